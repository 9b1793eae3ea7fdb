"""Commands on a fitted run: ``report``, ``encode``, ``sample``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from unsup.cli._app import (
    UserError,
    binarize_arg,
    check_width,
    cli,
    load_data,
    read_run,
)
from unsup.cli._app import run_dir as run_dir_of

__all__ = ["report", "encode", "sample"]


def _read_json(path: Path) -> dict:
    from unsup.runs import RunError, read_json

    try:
        return read_json(path)
    except RunError as e:
        raise UserError(str(e)) from None


@cli.command()
@click.argument("run_dir")
@click.option("--out", default=None, help="HTML file (default: RUN_DIR/report.html).")
def report(run_dir: str, out: str | None) -> None:
    """Write a self-contained HTML report for a fitted run."""
    from unsup.cli.fitting import load_input
    from unsup.report import model_report

    model, run = read_run(run_dir)
    spec = run.get("test_data") or run.get("data")
    ds = load_input(type(model), spec, run.get("binarize")) if spec else None
    metrics = None
    mpath = run_dir_of(run_dir) / "metrics.json"
    if mpath.exists():
        metrics = _read_json(mpath)
    X, y, shape = None, None, None
    if ds is not None and hasattr(ds, "texts"):  # a model of text: its sequences
        X = ds.texts
    elif ds is not None:
        X, y = ds.X, ds.y
        shape = tuple(ds.image_shape) if ds.image_shape else None
    rep = model_report(model, X, y, image_shape=shape, metrics=metrics,
                       title=f"{type(model).__name__} — {spec or 'no data'}")
    ppath = run_dir_of(run_dir) / "probe.json"
    if ppath.exists():  # written by `unsup evaluate RUN_DIR --probe`
        from unsup.report import probe_table

        probe = _read_json(ppath)
        probe_table(probe.get("rows", []), report=rep, title="Probe table",
                    caption=f"Linear probe (logistic regression on standardised frozen codes) "
                            f"and k-NN (cosine, k=5): trained on {probe.get('train_data')}, "
                            f"scored on {probe.get('test_data')}; mean ± std over seeds.")
    path = Path(out) if out else run_dir_of(run_dir) / "report.html"
    rep.save(path)
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("run_dir")
@click.option("--data", required=True, help="Data to encode (dataset name or path).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output .npy file for the codes (n_samples x n_components).")
@click.option("--binarize", default=None, help="As for fit (default: the run's setting).")
def encode(run_dir: str, data: str, out_path: str, binarize: str | None) -> None:
    """Write the codes (model.transform) of a fitted model for DATA to a .npy file."""
    import numpy as np

    model, run = read_run(run_dir)
    if not callable(getattr(model, "transform", None)):
        raise UserError(f"{type(model).__name__} has no transform: it does not produce codes")
    b = binarize_arg(binarize) if binarize is not None else run.get("binarize")
    ds = load_data(data, b)
    check_width(model, ds.X, f"--data {data}")
    try:
        codes = np.asarray(model.transform(ds.X))
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    out = Path(out_path)
    if out.suffix != ".npy":
        raise UserError(f"--out must end in .npy, got {out_path}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, codes)
    os.replace(tmp, out)
    click.echo(f"wrote {out} ({codes.shape[0]} x {codes.shape[1] if codes.ndim > 1 else 1})")


@cli.command()
@click.argument("run_dir")
@click.option("--n", "n", default=64, show_default=True, help="Number of samples.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output file: .npy (the samples, n x n_features), .png (a grid of images; "
                   "the run's image_shape) or .txt (text models: one sample per line).")
@click.option("--seed", default=0, show_default=True, help="Random seed of the sampler.")
def sample(run_dir: str, n: int, out_path: str, seed: int) -> None:
    """Draw N samples from a fitted model that can generate (model.sample(n))."""
    import numpy as np

    from unsup.report.sections import draw_samples

    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    out = Path(out_path)
    if out.suffix not in (".npy", ".png", ".txt"):
        raise UserError(f"--out must end in .npy, .png or .txt, got {out_path}")
    model, run = read_run(run_dir)
    if not callable(getattr(model, "sample", None)):
        raise UserError(f"{type(model).__name__} cannot sample: it is not a generative model "
                        "(it has no sample method)")
    samples = draw_samples(model, n, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    is_text = samples.dtype.kind in "USO"
    if is_text != (out.suffix == ".txt"):
        raise UserError(f"{type(model).__name__} samples text: --out must end in .txt"
                        if is_text else f"{type(model).__name__} samples arrays: --out must "
                        "end in .npy or .png")
    if is_text:
        lines = ["".join(map(str, r)) if np.ndim(r) else str(r) for r in samples]
        # multi-line samples (levels, verse) are separated by a blank line
        sep = "\n\n" if any("\n" in s for s in lines) else "\n"
        _write_text(out, sep.join(lines) + "\n")
    elif out.suffix == ".npy":
        tmp = out.with_name(out.name + ".tmp.npy")
        np.save(tmp, samples)
        os.replace(tmp, out)
    else:
        shape = run.get("image_shape")
        if not shape or int(np.prod(shape)) != samples.reshape(len(samples), -1).shape[1]:
            raise UserError(f"a .png grid needs image samples: the run records image_shape "
                            f"{shape} and the samples have {samples.shape[1:]} features; "
                            "write .npy instead")
        from unsup.report.plots import image_grid

        fig = image_grid(samples.reshape(len(samples), -1), tuple(shape),
                         ncols=int(np.ceil(np.sqrt(len(samples)))))
        tmp = out.with_name(out.name + ".tmp.png")
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, out)
    click.echo(f"wrote {out} ({len(samples)} samples, seed {seed})")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
