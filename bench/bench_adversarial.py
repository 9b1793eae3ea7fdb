"""The GAN loss zoo on mnist5k (Lucic et al. 2018 protocol), and the engine's overhead on a DCGAN.

    python bench/bench_adversarial.py [--losses all] [--seeds 0,1,2] [--epochs N]
        [--n-samples 10000] [--baselines vae,rbm] [--overhead-steps 60] [--threads 1]
        [--json PATH] [--samples-dir DIR]
    python bench/bench_adversarial.py --merge A.json B.json ... [--json ALL]   # parallel parts

1. Zoo: ``GAN(loss=L, random_state=s)`` with the library's defaults (same MLP generator and
   discriminator, same epochs and batch size for every loss; per-loss n_critic and learning
   rates as documented in ``unsup.adversarial.gan.LOSS_DEFAULTS``) trained on mnist5k for each
   of the seven losses and each seed; ``n`` samples scored against the 10,000 MNIST test digits
   by :func:`unsup.metrics.sample_quality.sample_quality` (FID and KID in the feature space of
   the shipped MNIST digit network, modes covered = digits holding at least 10 % of their
   uniform share); wall and CPU time of ``fit``; precision / recall. Mean ± std over seeds,
modes as the minimum over seeds. A run whose loss becomes NaN is
   reported as diverged (with the engine's message), not dropped.
2. Baselines on the same feature network: a VAE and a binary RBM with the settings of
   ``bench/bench_sample_quality.py`` (VAE: 20-dim code, 30 epochs, decoder means; RBM: 100
   hidden units, PCD, 3,000 updates, compared with the binarised test set).
3. Overhead: ``GAN(loss="ns", architecture="dcgan")`` for ``--overhead-steps`` engine steps
   against a hand-written PyTorch loop doing the same steps (same networks, same Adam settings,
   same batches, one D update on a detached fake then one G update); wall time of both,
   alternated, median of 3. Target: ratio <= 1.10.

``--epochs`` overrides the library default (40) for a reduced run; the defaults are the full
protocol (7 losses x 3 seeds x 40 epochs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import apply_threads, machine_info, machine_markdown  # noqa: E402

LUCIC_BEST_FID_MNIST = {"mm": 9.8, "ns": 6.8, "lsgan": 7.8, "wgan": 6.7, "wgan-gp": 20.3,
                        "dragan": 7.6, "began": 13.1}


def _ms(v: list[float], fmt: str = "{:.2f}") -> str:
    if not v:
        return "-"
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(statistics.mean(v))} ± {fmt.format(statistics.stdev(v))}"


def _score(S: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    from unsup.metrics.sample_quality import sample_quality

    q = sample_quality(S, test, random_state=0)
    return {"fid": q["fid"], "kid": q["kid"], "modes": q.get("modes"),
            "histogram": q.get("class_histogram"), "precision": q["precision"],
            "recall": q["recall"]}


def zoo(losses: list[str], seeds: list[int], epochs: int | None, n: int, train: np.ndarray,
        test: np.ndarray, samples_dir: Path | None = None,
        gan_params: dict[str, Any] | None = None) -> dict[str, Any]:
    from unsup.adversarial.gan import GAN
    from unsup.train.engine import TrainingDivergedError

    out: dict[str, Any] = {}
    for loss in losses:
        runs = []
        for seed in seeds:
            kw = {"loss": loss, "random_state": seed, "device": "cpu", **(gan_params or {})}
            if epochs is not None:
                kw["epochs"] = epochs
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                m = GAN(**kw).fit(train)
            except TrainingDivergedError as e:
                runs.append({"seed": seed, "diverged": str(e)})
                print(f"  {loss} seed {seed}: DIVERGED {e}", flush=True)
                continue
            fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
            S = m.sample(n, random_state=seed)
            if samples_dir is not None:  # kept, so that scoring can be redone (--rescore)
                samples_dir.mkdir(parents=True, exist_ok=True)
                np.save(samples_dir / f"{loss}_seed{seed}.npy", S)
            try:
                q = _score(S, test)
            except Exception as e:  # noqa: BLE001  (the metric module failing is reported)
                q = {"score_error": f"{type(e).__name__}: {e}"}
            h = m.history_[-1]
            runs.append({"seed": seed, "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu, **q,
                         "steps": m.n_steps_, "epochs": m.epochs,
                         "final_loss_d": h["loss_discriminator"],
                         "final_loss_g": h["loss_generator"],
                         "finite_history": bool(all(np.isfinite(r["loss"])
                                                    for r in m.history_))})
            print(f"  {loss} seed {seed}: {q} fit {fit_s:.0f}s wall, {fit_cpu:.0f}s CPU",
                  flush=True)
        out[loss] = runs
    return out


def baselines(names: list[str], train: np.ndarray, test: np.ndarray, n: int) -> dict[str, Any]:
    from unsup.metrics.sample_quality import sample_quality

    out: dict[str, Any] = {}
    for name in names:
        t0 = time.perf_counter()
        if name == "vae":
            from unsup.latent import VAE

            m = VAE(n_components=20, epochs=30, early_stopping=False, random_state=0).fit(train)
            S, ref, what = m.sample(n, random_state=0, mean=True), test, \
                "VAE, 20-dim code, 30 epochs, decoder means; vs grey test"
        elif name == "rbm":
            from unsup.energy import BernoulliRBM

            m = BernoulliRBM(n_components=100, persistent=True, binarize_input=0.5,
                             n_updates=3000, random_state=0).fit(train)
            S = m.sample(n, burn_in=500, thinning=5, n_chains=500, random_state=0)
            ref, what = ((test > 0.5).astype(np.float32),
                         "RBM 100 hidden, PCD, 3000 updates; vs binarised test")
        else:
            raise SystemExit(f"unknown baseline {name}")
        fit_s = time.perf_counter() - t0
        q = sample_quality(np.asarray(S, np.float32), ref, random_state=0)
        out[name] = {"setup": what, "fid": q["fid"], "kid": q["kid"], "modes": q.get("modes"),
                     "seconds": fit_s}
        print(f"  {name}: FID {q['fid']:.2f} KID {q['kid']:.4f} modes {q.get('modes')}",
              flush=True)
    return out


# -- overhead ------------------------------------------------------------------------------------
def _hand_written(X: np.ndarray, steps: int, seed: int) -> float:
    """The same DCGAN NS-GAN steps as GAN(architecture="dcgan", loss="ns"), written by hand."""
    import torch
    import torch.nn.functional as F

    from unsup.adversarial._gan_nets import GANNet
    from unsup.train.seeding import seeded

    t0 = time.perf_counter()
    with seeded(seed):
        net = GANNet(784, 64, "dcgan", (), (32, 64), (1, 28, 28), autoencoder=False, ema=False)
    G, D = net.G, net.D
    oD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    oG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    Xt = torch.from_numpy(X) * 2.0 - 1.0
    gen = torch.Generator().manual_seed(seed + 1)
    bs, step, epoch = 64, 0, 0
    while step < steps:
        order = torch.randperm(len(Xt), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(Xt), bs):
            x = Xt[order[i:i + bs]]
            fake = G(torch.randn(len(x), 64, generator=gen)).detach()
            d_loss = F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()
            oD.zero_grad(set_to_none=True)
            d_loss.backward()
            oD.step()
            g_loss = F.softplus(-D(G(torch.randn(len(x), 64, generator=gen)))).mean()
            oG.zero_grad(set_to_none=True)
            g_loss.backward()
            oG.step()
            step += 1
            if step >= steps:
                break
        epoch += 1
    return time.perf_counter() - t0


def _ours(X: np.ndarray, steps: int, seed: int) -> float:
    from unsup.adversarial.gan import GAN

    t0 = time.perf_counter()
    GAN(loss="ns", architecture="dcgan", max_steps=steps, epochs=1000, random_state=seed,
        device="cpu").fit(X)
    return time.perf_counter() - t0


def overhead(X: np.ndarray, steps: int, repeats: int = 3) -> dict[str, Any]:
    _hand_written(X, 3, 0), _ours(X, 3, 0)  # warm-up
    hw, us = [], []
    for r in range(repeats):
        hw.append(_hand_written(X, steps, r))
        us.append(_ours(X, steps, r))
    res = {"steps": steps, "hand_written_s": hw, "ours_s": us,
           "ratio_median": statistics.median(us) / statistics.median(hw)}
    print(f"  overhead ({steps} DCGAN steps): ours {statistics.median(us):.2f}s, hand-written "
          f"{statistics.median(hw):.2f}s, ratio {res['ratio_median']:.3f}", flush=True)
    return res


def markdown(res: dict[str, Any]) -> str:
    lines = ["| loss | FID (DigitNet features) | KID | modes (min over seeds) | precision | recall "
             "| fit CPU s | fit wall s | Lucic et al. best FID (Inception) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for loss, runs in res.get("zoo", {}).items():
        ok = [r for r in runs if "diverged" not in r]
        sc = [r for r in ok if "fid" in r]
        div = len(runs) - len(ok)
        modes = [int(r["modes"]) for r in sc if r.get("modes") is not None]
        lines.append(
            f"| {loss} | {_ms([r['fid'] for r in sc])} | "
            f"{_ms([r['kid'] for r in sc], '{:.4f}')} | "
            f"{min(modes) if modes else '-'} ({', '.join(map(str, modes))}) | "
            f"{_ms([r['precision'] for r in sc], '{:.3f}')} | "
            f"{_ms([r['recall'] for r in sc], '{:.3f}')} | "
            f"{_ms([r.get('fit_cpu_seconds', float('nan')) for r in ok], '{:.0f}')} | "
            f"{_ms([r['fit_seconds'] for r in ok], '{:.0f}')}"
            f"{f' ({div} diverged)' if div else ''} | {LUCIC_BEST_FID_MNIST[loss]} |")
    sc = {loss: statistics.mean(r["fid"] for r in runs if "fid" in r)
          for loss, runs in res.get("zoo", {}).items() if any("fid" in r for r in runs)}
    if len(sc) > 1:
        ours = sorted(sc, key=sc.__getitem__)
        theirs = sorted(sc, key=LUCIC_BEST_FID_MNIST.__getitem__)
        lines.append(f"\nRanking by mean FID, ours: {' < '.join(ours)}; Lucic et al.: "
                     f"{' < '.join(theirs)}")
    for b in res.get("baselines", {}).values():
        lines.append(f"| {b['setup']} | {b['fid']:.2f} | {b['kid']:.4f} | {b['modes']} | "
                     f"{b['seconds']:.0f} | - |")
    if "overhead" in res:
        o = res["overhead"]
        lines.append(f"\nEngine overhead, {o['steps']} DCGAN NS-GAN steps: ours "
                     f"{statistics.median(o['ours_s']):.2f} s vs hand-written "
                     f"{statistics.median(o['hand_written_s']):.2f} s, ratio "
                     f"{o['ratio_median']:.3f} (target <= 1.10)")
    return "\n".join(lines)


# -- BEGAN trace -------------------------------------------------------------------------------
def trace_began(seed: int, every: int, train: np.ndarray, params: dict[str, Any]) -> list[dict]:
    """BEGAN with the library's defaults (plus ``params``), logging every ``every`` steps the
    mean k_t, M, D(x) and D(x̂) since the last record, the per-pixel spread of 1,000 samples
    across codes, and their modes / class histogram (the diagnosis of docs/adversarial.md)."""
    import torch

    from unsup.adversarial import _losses as L
    from unsup.adversarial.gan import GAN
    from unsup.metrics.sample_quality import mode_coverage

    m = GAN(loss="began", random_state=seed, device="cpu", **params)
    acc: dict[str, list[float]] = {"k": [], "M": [], "Dx": []}
    z = torch.randn(1000, m.n_components, generator=torch.Generator().manual_seed(123))
    log: list[dict] = []
    d_loss = m._d_loss

    def spy(batch):  # the D phase's terms, read off the same tensors the model uses
        x = m._scale(batch)
        with torch.no_grad():
            lx = float(L.reconstruction_error(m.module_.D, x, m.began_eta).mean())
        out = d_loss(batch)
        acc["Dx"].append(lx)
        acc["M"].append(m._terms[0])
        acc["k"].append(m._terms[1])
        return out

    m._d_loss = spy

    def cb(step: int, metrics: dict[str, float]) -> None:
        if step % every:
            return
        with torch.no_grad():
            S = m._unscale(m.module_.sampler()(z))
        mc = mode_coverage(S.numpy())
        rec = {"step": step, **{k: float(np.mean(v)) for k, v in acc.items()},
               "k_max": float(max(acc["k"])), "spread": float(S.std(0).mean()),
               "modes": mc["modes"], "histogram": mc["histogram"]}
        log.append(rec)
        print(f"  step {step:5d} k {rec['k']:.4f} (max {rec['k_max']:.3f}) M {rec['M']:.4g} "
              f"D(x) {rec['Dx']:.4g} spread {rec['spread']:.3f} modes {rec['modes']} "
              f"{rec['histogram']}", flush=True)
        for v in acc.values():
            v.clear()

    m.fit(train, callbacks=[cb])
    return log


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from unsup.adversarial._losses import LOSSES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--losses", default="all", help="comma list or 'all' or 'none'")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=None, help="default: the library's (40)")
    ap.add_argument("--n-samples", type=int, default=10000)
    ap.add_argument("--baselines", default="vae,rbm", help="comma list or 'none'")
    ap.add_argument("--overhead-steps", type=int, default=60, help="0: skip")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--samples-dir", type=Path, default=None,
                    help="keep each run's samples here as .npy (for --rescore)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="JSONs written by --json (e.g. parallel runs over disjoint losses): "
                         "print their zoo as one table (and write it to --json)")
    ap.add_argument("--rescore", type=Path, default=None,
                    help="a JSON written by --json: score its runs' kept samples again")
    ap.add_argument("--gan-params", default="{}",
                    help="JSON of GAN parameters added to every zoo run (not the defaults!)")
    ap.add_argument("--trace-began", type=int, default=None, metavar="SEED",
                    help="only trace BEGAN (k_t, M, D(x), spread, modes) for this seed")
    ap.add_argument("--trace-every", type=int, default=395)
    ap.add_argument("--trace-params", default="{}", help="JSON of extra GAN parameters")
    args = ap.parse_args(argv)
    apply_threads(args.threads)
    from unsup.data import load

    if args.trace_began is not None:
        log = trace_began(args.trace_began, args.trace_every, load("mnist5k").X,
                          json.loads(args.trace_params))
        if args.json:
            args.json.write_text(json.dumps({"seed": args.trace_began, "trace": log,
                                             "params": json.loads(args.trace_params)}))
        return {"trace": log}

    if args.merge:
        res = {"zoo": {}, "parts": [str(p) for p in args.merge]}
        for p in args.merge:
            part = json.loads(p.read_text())
            res.setdefault("machine", part.get("machine"))
            res["zoo"].update(part.get("zoo", {}))
            for k in ("baselines", "overhead"):
                if k in part:
                    res[k] = part[k]
        order = [x for x in LOSSES if x in res["zoo"]]
        res["zoo"] = {x: res["zoo"][x] for x in order}
        print(markdown(res))
        if args.json:
            args.json.write_text(json.dumps(res, indent=1, default=str))
        return res
    train, test = load("mnist5k").X, load("mnist-test").X
    if args.rescore:
        res = json.loads(args.rescore.read_text())
        sdir = Path(res["args"]["samples_dir"])
        for loss, runs in res.get("zoo", {}).items():
            for r in runs:
                if "diverged" not in r:
                    r.update(_score(np.load(sdir / f"{loss}_seed{r['seed']}.npy"), test))
                    r.pop("score_error", None)
        print(markdown(res))
        args.rescore.write_text(json.dumps(res, indent=1, default=str))
        return res
    losses = (list(LOSSES) if args.losses == "all" else
              [] if args.losses == "none" else args.losses.split(","))
    res: dict[str, Any] = {"machine": machine_info(),
                           "args": {k: str(v) if isinstance(v, Path) else v
                                    for k, v in vars(args).items()}}
    if losses:
        res["zoo"] = zoo(losses, [int(s) for s in args.seeds.split(",")], args.epochs,
                         args.n_samples, train, test, args.samples_dir,
                         json.loads(args.gan_params))
    if args.baselines != "none":
        res["baselines"] = baselines(args.baselines.split(","), train, test, args.n_samples)
    if args.overhead_steps:
        res["overhead"] = overhead(train, args.overhead_steps)
    print(machine_markdown(res["machine"]))
    print(markdown(res))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1, default=str))
    return res


if __name__ == "__main__":
    main()
