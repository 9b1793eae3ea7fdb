"""The report in a real headless browser: it renders, logs no console error, every image loads.

Needs a Chromium-family browser on PATH (``chromium``, ``chromium-browser``, ``google-chrome``)
or named by ``$UNSUP_CHROMIUM``; skipped otherwise (``.ci/run`` installs Debian's chromium).
The page is opened from a copy with a probe script prepended that records uncaught errors,
``console.error`` calls and each image's load state into the DOM, which ``--dump-dom`` then
prints; Chromium's own console log (``--enable-logging=stderr``) is checked as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    env = os.environ.get("UNSUP_CHROMIUM")
    if env:
        return env if shutil.which(env) or Path(env).is_file() else None
    return next((p for p in map(shutil.which, _NAMES) if p), None)


BROWSER = _browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium on PATH (install "
                                "the chromium package or set UNSUP_CHROMIUM)")

_PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push("error: " + e.message));
const _ce = console.error;
console.error = (...a) => { window.__errors.push("console.error: " + a.join(" ")); _ce(...a); };
window.addEventListener("load", () => {
  const imgs = Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0,
                                                      w: i.naturalWidth, h: i.naturalHeight}));
  const out = document.createElement("pre");
  out.id = "__probe";
  out.textContent = JSON.stringify({errors: window.__errors, images: imgs,
    details: document.querySelectorAll("details.section").length,
    open: document.querySelectorAll("details.section[open]").length,
    toc: Array.from(document.querySelectorAll("nav.toc a")).map(a => a.getAttribute("href")),
    width: document.documentElement.scrollWidth, height: document.body.scrollHeight});
  document.body.appendChild(out);
});
</script>"""


def _run(args: list[str], timeout: int = 90) -> subprocess.CompletedProcess:
    base = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
            # no network: without these Chromium keeps trying to reach its update services
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-quic", f"--user-data-dir={tempfile.mkdtemp(prefix='unsup-chromium-')}",
            "--allow-file-access-from-files", "--window-size=1280,1600"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=timeout)


class _Collapsing:
    """A sampler whose samples are all one training image: a chain that has not mixed."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X

    def get_params(self, deep: bool = False) -> dict:
        return {}

    def sample(self, n: int, random_state: int | None = None) -> np.ndarray:
        return np.repeat(self.X[:1], n, axis=0)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    from unsup.cluster import KMeans
    from unsup.data import load
    from unsup.decomposition import PCA
    from unsup.report import Report, model_report

    ds = load("digits")
    X, y = ds.X[:300], ds.y[:300]
    rep = Report("browser check")
    with rep.section("Summary", open=True):
        rep.text("summary first")
    # long titles, as the demo's: the contents bar must wrap, not scroll sideways
    for title, model in (("k-means (K=10, k-means++, Lloyd)", KMeans(10, random_state=0).fit(X)),
                         ("PCA (8 components, exact SVD)", PCA(8, random_state=0).fit(X)),
                         ("stuck sampler (every sample is one image)", _Collapsing(X))):
        model_report(model, X, y, image_shape=ds.image_shape, title=title, report=rep)
    path = tmp_path_factory.mktemp("browser") / "report.html"
    rep.save(path)
    return path


def test_report_renders_without_errors_and_every_image_loads(report_file: Path) -> None:
    html = report_file.read_text()
    probed = report_file.with_name("probed.html")
    probed.write_text(html.replace("<head>", "<head>\n" + _PROBE, 1))
    r = _run(["--dump-dom", probed.as_uri()])
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="__probe">(.*?)</pre>', r.stdout, re.S)
    assert m, f"the probe did not run: {r.stdout[-500:]!r} {r.stderr[-1000:]!r}"
    state = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert state["errors"] == []
    n_img = html.count("<img ")
    assert n_img >= 6 and len(state["images"]) == n_img
    assert all(i["ok"] and i["w"] > 10 and i["h"] > 10 for i in state["images"]), state["images"]
    # one collapsible section per model plus the summary; only the summary open
    assert state["details"] == 4 and state["open"] == 1
    assert len(state["toc"]) == 4 and all(h.startswith("#") for h in state["toc"])
    for href in state["toc"]:
        assert f'id="{href[1:]}"' in html
    assert state["width"] <= 1280  # no horizontal scrolling at a laptop's width
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln and "ERROR" in ln.upper()]
    assert console == []


def test_report_screenshot(report_file: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    r = _run([f"--screenshot={shot}", report_file.as_uri()])
    assert shot.is_file(), r.stderr[-2000:]
    img = imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1200
    # something was drawn: not a blank page (several distinct grey levels)
    assert np.unique(np.round(img[..., :3].mean(-1), 2)).size > 10
    keep = os.environ.get("UNSUP_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "report.png")
