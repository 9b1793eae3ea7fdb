"""Stopping a fit after its k-th checkpoint, for the resume tests.

In process: ``crash_after`` makes ``save_checkpoint`` raise ``Crash`` once it has written the
k-th checkpoint. In a child process: ``hang_site`` writes a ``sitecustomize`` that makes the
child write a marker and sleep at its k-th checkpoint, and ``kill_when_hanging`` sends SIGKILL
only once the marker exists, so the kill lands at a known checkpoint however fast the machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from unsup.train.checkpoint import CHECKPOINT_NAME


class Crash(Exception):
    pass


def crash_after(monkeypatch, module, k: int) -> None:
    """``module.save_checkpoint`` raises ``Crash`` right after writing the k-th checkpoint."""
    orig, n = module.save_checkpoint, [0]

    def save(*a, **kw):
        orig(*a, **kw)
        n[0] += 1
        if n[0] == k:
            raise Crash

    monkeypatch.setattr(module, "save_checkpoint", save)


def checkpoint_meta(d: Path) -> dict:
    """The JSON metadata of the checkpoint in directory ``d``."""
    from safetensors import safe_open

    with safe_open(str(d / CHECKPOINT_NAME), framework="pt") as f:
        return json.loads(f.metadata()["json"])


def hang_site(tmp_path: Path, at: int = 3,
              modules: tuple[str, ...] = ("unsup.train._em_checkpoint",)) -> tuple[dict, Path]:
    """Environment for a child (one thread) that hangs at its ``at``-th checkpoint; the marker
    path it writes when it does."""
    site, marker = tmp_path / "site", tmp_path / "hanging"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import importlib, time
        _n = [0]
        def _slowed(orig):
            def save(*a, **k):
                orig(*a, **k)
                _n[0] += 1
                if _n[0] >= {at}:
                    open({str(marker)!r}, "w").close()
                    # short sleeps: a signal that lands before a long sleep's system call
                    # would wait for it (CPython checks for signals between sleeps)
                    for _ in range(6000):
                        time.sleep(0.1)
            return save
        for _name in {list(modules)!r}:
            _m = importlib.import_module(_name)
            _m.save_checkpoint = _slowed(_m.save_checkpoint)
    """))
    path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}
    return env, marker


def kill_when_hanging(cmd: list[str], env: dict, marker: Path, timeout: float = 180,
                      sig: int = signal.SIGKILL) -> subprocess.CompletedProcess:
    """Run ``cmd``; send ``sig`` once it writes ``marker``; the finished process (asserting that
    SIGKILL killed it)."""
    # SIGINT back to its default in the child: a test run started in the background by a
    # shell without job control (`cmd &`) ignores SIGINT, the child inherits that, and Python
    # then installs no KeyboardInterrupt handler (the child slept through Ctrl-C)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + timeout
    while not marker.exists():
        assert p.poll() is None and time.time() < deadline, p.communicate()
        time.sleep(0.02)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert sig != signal.SIGKILL or p.returncode == -9, err
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)
