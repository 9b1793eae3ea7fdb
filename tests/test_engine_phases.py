"""The step protocol of the gradient engine: several optimisers, phases in a declared order.

Two toy models: a GAN-like two-player game that fits the mean of a 1-D Gaussian with a
shifted-noise generator ``x = z + b`` against a linear logistic discriminator (``n_critic``
critic phases then one generator phase per step), and a wake-sleep-like linear-Gaussian model
(a wake phase for the generative weight, a sleep phase for the recognition weight).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from torch import nn

from unsup.train import GradientEstimator, OptimizerSpec, Phase, TrainConfig, train

torch.set_num_threads(1)


class ToyGAN(GradientEstimator):
    """Generator ``x = z + b`` (z ~ N(0, 1)), discriminator ``D(x) = w x + c``."""

    def __init__(self, n_critic: int = 2, d_learning_rate: float = 0.05,
                 g_learning_rate: float = 0.05, record: bool = False) -> None:
        super().__init__()
        self.n_critic = n_critic
        self.d_learning_rate = d_learning_rate
        self.g_learning_rate = g_learning_rate
        self.record = record

    def _build_module(self) -> nn.Module:
        m = nn.Module()
        m.D = nn.Linear(1, 1)
        m.b = nn.Parameter(torch.zeros(1))
        self.calls_: list[tuple[str, dict[str, torch.Tensor]]] = []
        return m

    def _fake(self, n: int) -> torch.Tensor:
        return torch.randn(n, 1, generator=self._gen) + self.module_.b

    def _note(self, name: str, grad_of: torch.Tensor | None = None,
              loss: torch.Tensor | None = None) -> None:
        if self.record and self.module_.training:
            snap = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
            if loss is not None:
                snap["grad_b"] = torch.autograd.grad(loss, grad_of, retain_graph=True)[0]
            self.calls_.append((name, snap))

    def _d_loss(self, x: torch.Tensor) -> torch.Tensor:
        # the fake batch is deliberately not detached: the engine must keep the generator's
        # gradient from this phase out of the generator's update
        loss = F.softplus(-self.module_.D(x)).mean() + F.softplus(
            self.module_.D(self._fake(len(x)))).mean()
        self._note("critic")
        return loss

    def _g_loss(self, x: torch.Tensor) -> torch.Tensor:
        loss = F.softplus(-self.module_.D(self._fake(len(x)))).mean()
        self._note("generator", self.module_.b, loss)
        return loss

    def _optimizers(self) -> dict[str, OptimizerSpec]:
        return {"discriminator": OptimizerSpec(self.module_.D.parameters(),
                                               learning_rate=self.d_learning_rate),
                "generator": OptimizerSpec([self.module_.b],
                                           learning_rate=self.g_learning_rate)}

    def _phases(self) -> list[Phase]:
        return [Phase("critic", self._d_loss, "discriminator", repeat=self.n_critic),
                Phase("generator", self._g_loss, "generator")]


class ToyWakeSleep(GradientEstimator):
    """Recognition ``h = a x``, generation ``x = g h``; wake fits g, sleep fits a."""

    def __init__(self, record: bool = False) -> None:
        super().__init__()
        self.record = record

    def _build_module(self) -> nn.Module:
        m = nn.Module()
        m.a = nn.Parameter(torch.tensor([0.1]))
        m.g = nn.Parameter(torch.tensor([0.5]))
        self.calls_: list[tuple[str, dict[str, torch.Tensor]]] = []
        return m

    def _note(self, name: str) -> None:
        if self.record and self.module_.training:
            self.calls_.append((name, {k: v.detach().clone()
                                       for k, v in self.module_.state_dict().items()}))

    def _wake(self, x: torch.Tensor) -> torch.Tensor:
        self._note("wake")
        m = self.module_
        h = m.a * x  # recognition sample (deterministic here), not detached on purpose
        return (x - m.g * h).pow(2).mean()

    def _sleep(self, x: torch.Tensor) -> torch.Tensor:
        self._note("sleep")
        m = self.module_
        h = torch.randn(x.shape, generator=self._gen)
        dream = m.g * h  # generated ("dreamt") data
        return (m.a * dream - h).pow(2).mean()

    def _optimizers(self) -> dict[str, OptimizerSpec]:
        return {"generative": OptimizerSpec([self.module_.g]),
                "recognition": OptimizerSpec([self.module_.a])}

    def _phases(self) -> list[Phase]:
        return [Phase("wake", self._wake, "generative"),
                Phase("sleep", self._sleep, "recognition")]


def _gauss(n: int = 64, mean: float = 3.0, seed: int = 0) -> np.ndarray:
    return (mean + np.random.RandomState(seed).standard_normal((n, 1))).astype(np.float32)


def _state(est) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in est.module_.state_dict().items()}


@pytest.mark.parametrize("n_critic", [1, 3])
def test_phases_run_in_declared_order_and_count(n_critic):
    est = ToyGAN(n_critic=n_critic, record=True, epochs=2, batch_size=16, device="cpu",
                 random_state=0).fit(_gauss())
    names = [c[0] for c in est.calls_]
    assert est.n_steps_ == 8
    assert names == (["critic"] * n_critic + ["generator"]) * 8
    ws = ToyWakeSleep(record=True, epochs=1, batch_size=16, device="cpu",
                      random_state=0).fit(_gauss())
    assert [c[0] for c in ws.calls_] == ["wake", "sleep"] * 4


@pytest.mark.parametrize("model", ["gan", "wake-sleep"])
def test_each_optimizer_updates_only_its_own_parameters(model):
    if model == "gan":
        est = ToyGAN(n_critic=2, record=True, epochs=1, batch_size=16, optimizer="sgd",
                     momentum=0.0, device="cpu", random_state=1)
        own = {"critic": {"D.weight", "D.bias"}, "generator": {"b"}}
    else:
        est = ToyWakeSleep(record=True, epochs=1, batch_size=16, optimizer="sgd",
                           momentum=0.0, learning_rate=0.05, device="cpu", random_state=1)
        own = {"wake": {"g"}, "sleep": {"a"}}
    est.fit(_gauss())
    calls = est.calls_
    final = _state(est)
    for i, (name, before) in enumerate(calls):
        after = calls[i + 1][1] if i + 1 < len(calls) else final
        for k in ("D.weight", "D.bias", "b", "a", "g"):
            if k not in before:
                continue
            changed = not torch.equal(before[k], after[k])
            assert changed == (k in own[name]), (i, name, k)


def test_generator_step_uses_only_the_generator_loss_gradient():
    # plain SGD: b' = b - lr * dL_G/db exactly, however many critic phases came before
    lr = 0.05
    est = ToyGAN(n_critic=3, g_learning_rate=lr, record=True, epochs=1, batch_size=16,
                 optimizer="sgd", momentum=0.0, device="cpu", random_state=2).fit(_gauss())
    calls = est.calls_
    final = _state(est)
    n_checked = 0
    for i, (name, before) in enumerate(calls):
        if name != "generator":
            continue
        after = calls[i + 1][1] if i + 1 < len(calls) else final
        expected = before["b"] - lr * before["grad_b"]
        torch.testing.assert_close(after["b"], expected, rtol=0, atol=1e-7)
        n_checked += 1
    assert n_checked == 4


def test_toy_gan_fits_the_mean():
    est = ToyGAN(n_critic=2, epochs=60, batch_size=32, weight_decay=1e-2, device="cpu",
                 random_state=0).fit(_gauss(256, mean=3.0))
    b = float(est.module_.b.detach())
    assert abs(b - 3.0) < 0.5, b
    assert {"loss", "loss_critic", "loss_generator", "lr_discriminator", "lr_generator"} <= set(
        est.history_[-1])


class _Stop(Exception):
    pass


@pytest.mark.parametrize("make", [
    lambda **kw: ToyGAN(n_critic=3, **kw),
    lambda **kw: ToyWakeSleep(**kw),
])
def test_two_optimizer_kill_and_resume_is_bit_identical(tmp_path, make):
    X = _gauss(100)
    kw = dict(epochs=5, batch_size=16, lr_schedule="cosine", warmup_steps=3,
              clip_grad_norm=1.0, device="cpu", random_state=4)
    ref = make(**kw).fit(X)

    def killer(step: int, metrics: dict) -> None:
        if step == 11:
            raise _Stop

    ckpt = str(tmp_path / "ck")
    with pytest.raises(_Stop):
        make(checkpoint_dir=ckpt, checkpoint_every=4, **kw).fit(X, callbacks=[killer])
    assert (Path(ckpt) / "checkpoint.safetensors").exists()
    resumed = make(checkpoint_dir=ckpt, checkpoint_every=4, resume=True, **kw).fit(X)
    a, b = _state(ref), _state(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["loss"] for h in ref.history_] == [h["loss"] for h in resumed.history_]
    assert resumed.n_steps_ == ref.n_steps_ == 5 * 7
    # without the optimisers' states the resumed run would differ: drop them and compare
    from unsup.train.checkpoint import load_checkpoint, save_checkpoint

    with pytest.raises(_Stop):
        make(checkpoint_dir=ckpt + "2", checkpoint_every=4, **kw).fit(X, callbacks=[killer])
    tensors, meta = load_checkpoint(ckpt + "2")
    save_checkpoint(ckpt + "2", {k: v for k, v in tensors.items()
                                 if not k.startswith("optim.")}, {**meta, "optimizers": {
                                     k: {"param_groups": v["param_groups"], "scalars": {}}
                                     for k, v in meta["optimizers"].items()}})
    broken = make(checkpoint_dir=ckpt + "2", checkpoint_every=4, resume=True, **kw).fit(X)
    assert any(not torch.equal(a[k], _state(broken)[k]) for k in a)


def test_resume_refuses_a_different_phase_plan(tmp_path):
    X = _gauss()
    ckpt = str(tmp_path / "ck")
    ToyGAN(n_critic=2, epochs=1, batch_size=16, checkpoint_dir=ckpt, device="cpu").fit(X)
    with pytest.raises(ValueError, match="different run"):
        ToyGAN(n_critic=3, epochs=2, batch_size=16, checkpoint_dir=ckpt, resume=True,
               device="cpu").fit(X)


def test_clone_and_params_of_a_multi_phase_model():
    est = ToyGAN(n_critic=5, epochs=3, clip_grad_norm=2.0)
    c = clone(est)
    assert c.get_params()["n_critic"] == 5 and c.clip_grad_norm == 2.0 and c.epochs == 3


def test_bad_step_declarations_are_refused():
    m = nn.Module()
    m.p, m.q = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    X = torch.zeros(8, 1)
    cfg = TrainConfig(epochs=1, batch_size=4)

    def loss(b: torch.Tensor) -> torch.Tensor:
        return (m.p + m.q).pow(2).sum()

    with pytest.raises(ValueError, match="both optimizers"):
        train(m, [Phase("x", loss, "a"), Phase("y", loss, "b")], X, cfg,
              optimizers={"a": [m.p, m.q], "b": [m.q]})
    with pytest.raises(ValueError, match="not declared"):
        train(m, [Phase("x", loss, "a")], X, cfg, optimizers={"b": [m.p]})
    with pytest.raises(ValueError, match="stepped by no phase"):
        train(m, [Phase("x", loss, "a")], X, cfg, optimizers={"a": [m.p], "b": [m.q]})
    with pytest.raises(ValueError, match="repeat"):
        train(m, [Phase("x", loss, "main", repeat=0)], X, cfg)


def test_loss_scaler_path_with_two_optimizers_runs_and_resumes(tmp_path, monkeypatch):
    # fp16 autocast needs CUDA; on CPU the engine's GradScaler path still runs (the scalers
    # are disabled, so scale/step/update pass through): same weights as without scaling,
    # and scaler states go through the checkpoint
    import contextlib
    import warnings

    import unsup.train.engine as engine

    X = _gauss(60)
    kw = dict(n_critic=2, epochs=3, batch_size=16, clip_grad_norm=1.0, device="cpu",
              random_state=5)
    ref = ToyGAN(**kw).fit(X)
    monkeypatch.setattr(engine, "amp_context",
                        lambda amp, device: (contextlib.nullcontext, torch.float16))
    ckpt = str(tmp_path / "ck")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available, disabling GradScaler"
        with pytest.raises(_Stop):
            ToyGAN(checkpoint_dir=ckpt, checkpoint_every=2, **kw).fit(
                X, callbacks=[lambda s, m: (_ for _ in ()).throw(_Stop) if s == 5 else None])
        scaled = ToyGAN(checkpoint_dir=ckpt, checkpoint_every=2, resume=True, **kw).fit(X)
    for k, v in _state(ref).items():
        assert torch.equal(v, _state(scaled)[k]), k


_KILL_SCRIPT = r'''
import sys, time, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[2])
from test_engine_phases import two_player_run
two_player_run(sys.argv[1], slow=True)
'''


def two_player_run(ckpt: str | None, slow: bool = False, resume: bool = False) -> nn.Module:
    """A two-optimiser run through :func:`train` (used in-process and in a killed child)."""
    import time

    torch.manual_seed(0)
    module = nn.ModuleDict({"D": nn.Linear(1, 1), "G": nn.Linear(1, 1)})
    g = torch.Generator().manual_seed(1)
    X = torch.from_numpy(_gauss(96))

    def fake(n: int) -> torch.Tensor:
        return module["G"](torch.randn(n, 1, generator=g))

    def d_loss(x: torch.Tensor) -> torch.Tensor:
        return F.softplus(-module["D"](x)).mean() + F.softplus(module["D"](fake(len(x)))).mean()

    def g_loss(x: torch.Tensor) -> torch.Tensor:
        return F.softplus(-module["D"](fake(len(x)))).mean()

    cfg = TrainConfig(epochs=6, batch_size=16, learning_rate=0.02, lr_schedule="cosine",
                      checkpoint_dir=ckpt, checkpoint_every=2 if ckpt else None, resume=resume)
    train(module, [Phase("d", d_loss, "d", repeat=2), Phase("g", g_loss, "g")], X, cfg,
          generators={"noise": g},
          optimizers={"d": OptimizerSpec(module["D"].parameters()),
                      "g": OptimizerSpec(module["G"].parameters(), optimizer="sgd")},
          callbacks=[lambda s, m: time.sleep(0.1)] if slow else [])
    return module


def test_exact_resume_after_sigkill(tmp_path):
    import subprocess
    import sys
    import time

    from unsup.train.checkpoint import load_checkpoint

    ckpt = str(tmp_path / "ck")
    here = str(Path(__file__).parent)
    child = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, ckpt, here])
    try:
        deadline = time.time() + 120
        step = 0
        while time.time() < deadline and child.poll() is None:
            loaded = load_checkpoint(ckpt) if Path(ckpt).exists() else None
            step = loaded[1]["state"]["step"] if loaded else 0
            if step >= 8:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the child finished before it could be killed"
        child.kill()  # SIGKILL: no cleanup, no final checkpoint
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    assert 8 <= step < 36
    ref = two_player_run(None)
    resumed = two_player_run(ckpt, resume=True)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
