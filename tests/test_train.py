"""The gradient engine: exact resume, divergence, early stopping, logs, schedules, DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from unsup.autoencoders import Autoencoder, DenoisingAutoencoder
from unsup.train import TrainConfig, TrainingDivergedError, lr_factor, train
from unsup.train.checkpoint import optimizer_from_flat, optimizer_to_flat

torch.set_num_threads(1)


def _data(n: int = 120, d: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return rng.rand(n, d).astype(np.float32)


def _weights(est) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in est.module_.state_dict().items()}


class _Stop(Exception):
    pass


@pytest.mark.parametrize("optimizer,schedule", [("adam", "cosine"), ("sgd", "step")])
def test_kill_and_resume_gives_identical_weights(tmp_path, optimizer, schedule):
    X = _data()
    kw = dict(noise="masking", noise_level=0.3, hidden_layer_sizes=(8,), epochs=4,
              batch_size=32, optimizer=optimizer, lr_schedule=schedule,
              validation_fraction=0.2, device="cpu", random_state=3)
    ref = DenoisingAutoencoder(4, **kw).fit(X)

    ckpt = str(tmp_path / "ck")

    def killer(step: int, metrics: dict) -> None:
        if step == 7:
            raise _Stop

    est = DenoisingAutoencoder(4, checkpoint_dir=ckpt, checkpoint_every=3, **kw)
    with pytest.raises(_Stop):
        est.fit(X, callbacks=[killer])
    assert (Path(ckpt) / "checkpoint.safetensors").exists()
    resumed = DenoisingAutoencoder(4, checkpoint_dir=ckpt, checkpoint_every=3, resume=True,
                                   **kw).fit(X)
    a, b = _weights(ref), _weights(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["loss"] for h in ref.history_] == [h["loss"] for h in resumed.history_]
    assert resumed.n_steps_ == ref.n_steps_ == 4 * 3


def test_max_steps_then_resume_continues_exactly(tmp_path):
    X = _data()
    kw = dict(hidden_layer_sizes=(8,), epochs=3, batch_size=25, device="cpu", random_state=1)
    ref = Autoencoder(4, **kw).fit(X)
    ckpt = str(tmp_path / "ck")
    part = Autoencoder(4, max_steps=5, checkpoint_dir=ckpt, checkpoint_every=100, **kw).fit(X)
    assert part.n_steps_ == 5
    full = Autoencoder(4, checkpoint_dir=ckpt, resume=True, **kw).fit(X)
    for k, v in _weights(ref).items():
        assert torch.equal(v, _weights(full)[k]), k
    # resuming a finished run is a no-op that restores the final weights
    again = Autoencoder(4, checkpoint_dir=ckpt, resume=True, **kw).fit(X)
    for k, v in _weights(ref).items():
        assert torch.equal(v, _weights(again)[k]), k


def test_resume_refuses_a_different_run(tmp_path):
    X = _data()
    ckpt = str(tmp_path / "ck")
    Autoencoder(4, epochs=1, batch_size=20, checkpoint_dir=ckpt, device="cpu").fit(X)
    with pytest.raises(ValueError, match="different run"):
        Autoencoder(4, epochs=1, batch_size=30, checkpoint_dir=ckpt, resume=True,
                    device="cpu").fit(X)


def test_nan_loss_names_step_and_cause_and_keeps_checkpoint(tmp_path):
    X = (np.random.RandomState(0).standard_normal((200, 10)) * 1e3).astype(np.float32)
    ckpt = tmp_path / "ck"
    est = Autoencoder(4, hidden_layer_sizes=(16,), optimizer="sgd", learning_rate=10.0,
                      epochs=20, batch_size=20, checkpoint_dir=str(ckpt), checkpoint_every=1,
                      device="cpu", random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"at step \d+.*learning rate.*not scaled"):
        est.fit(X)
    assert (ckpt / "checkpoint.safetensors").exists()
    assert not list(ckpt.glob(".*tmp*"))  # no half-written file left behind


def test_early_stopping_restores_best_weights():
    p = nn.Parameter(torch.zeros(1))
    module = nn.Module()
    module.p = p
    cfg = TrainConfig(epochs=50, batch_size=10, learning_rate=0.1, optimizer="sgd",
                      momentum=0.0, validation_fraction=0.2, early_stopping=True, patience=2)
    X = torch.zeros(50, 1)
    res = train(module, lambda b: (p - 5).pow(2).sum(), X, cfg,
                val_loss_fn=lambda b: p.pow(2).sum())  # validation gets worse every epoch
    assert res.stopped_early
    assert len(res.history) == 3
    assert res.history[0]["val_loss"] < res.history[1]["val_loss"] < res.history[2]["val_loss"]
    assert float(p.detach().pow(2).sum()) == pytest.approx(res.history[0]["val_loss"])


def test_metrics_log_and_history(tmp_path):
    X = _data()
    est = Autoencoder(4, epochs=2, batch_size=20, validation_fraction=0.25,
                      checkpoint_dir=str(tmp_path), device="cpu", random_state=0).fit(X)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in lines if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all("val_loss" in r for r in epochs)
    assert [h["epoch"] for h in est.history_] == [1, 2]


def test_progress_reports_reach_the_sink():
    from unsup.base import progress_callback

    seen = []
    with progress_callback(lambda stage, step, total, **m: seen.append((stage, step, total, m))):
        Autoencoder(4, epochs=2, batch_size=40, device="cpu", random_state=0).fit(_data())
    assert seen and seen[-1][1] == seen[-1][2] == 6
    assert "loss" in seen[-1][3]


def test_memmap_input(tmp_path):
    X = _data(100, 8)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    est = Autoencoder(3, hidden_layer_sizes=(), epochs=30, batch_size=25, device="cpu",
                      learning_rate=1e-2, random_state=0).fit(mm)
    assert est.history_[-1]["loss"] < est.history_[0]["loss"]
    assert est.transform(mm).shape == (100, 3)


def test_lr_schedules():
    assert lr_factor("constant", 10, 100) == 1.0
    assert lr_factor("cosine", 0, 100) == 1.0
    assert lr_factor("cosine", 100, 100) == pytest.approx(0.0)
    assert lr_factor("linear", 50, 100) == pytest.approx(0.5)
    assert lr_factor("step", 80, 100) == pytest.approx(0.01)
    assert lr_factor("constant", 0, 100, warmup=10) == pytest.approx(0.1)


def test_optimizer_state_roundtrip_without_pickle():
    m = nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2, betas=(0.8, 0.9))
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = optimizer_to_flat(opt)
    json.dumps(meta)
    opt2 = torch.optim.Adam(m.parameters(), lr=1.0)
    optimizer_from_flat(opt2, tensors, meta)
    assert opt2.param_groups[0]["betas"] == (0.8, 0.9)
    for p in m.parameters():
        for k, v in opt.state[p].items():
            assert torch.equal(v, opt2.state[p][k])


@pytest.mark.parametrize("params,msg", [
    (dict(epochs=0), "epochs"),
    (dict(optimizer="lbfgs"), "optimizer"),
    (dict(lr_schedule="wavy"), "lr_schedule"),
    (dict(early_stopping=True), "validation_fraction"),
    (dict(resume=True), "checkpoint_dir"),
    (dict(learning_rate=-1.0), "learning_rate"),
])
def test_bad_training_params(params, msg):
    with pytest.raises(ValueError, match=msg):
        Autoencoder(4, device="cpu", **params).fit(_data())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_ranks(tmp_path):
    worker = Path(__file__).with_name("_ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).parents[1]) + os.pathsep
           + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(worker),
           str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (np.load(tmp_path / f"rank{i}.npz") for i in range(2))
    assert int(a["world"]) == 2
    for k in a.files:
        if k not in ("losses", "world"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_allclose(a["losses"], b["losses"])  # epoch losses are all-reduced
    assert a["losses"][-1] < 0.5 * a["losses"][0]


def test_every_training_parameter_is_a_constructor_parameter():
    import inspect

    from sklearn.base import clone

    from unsup.autoencoders import SparseAutoencoder, StackedAutoencoder
    from unsup.train.params import TRAIN_PARAMS

    for cls in (Autoencoder, DenoisingAutoencoder, SparseAutoencoder, StackedAutoencoder):
        sig = inspect.signature(cls.__init__).parameters
        assert set(TRAIN_PARAMS.names) <= set(sig), cls
        est = cls(warmup_steps=7, clip_grad_norm=0.5, tensorboard=False, log_every=3)
        assert clone(est).get_params()["warmup_steps"] == 7
    assert StackedAutoencoder().epochs == 50 and StackedAutoencoder().lr_schedule == "cosine"


def test_clip_grad_norm_bounds_each_update():
    p = nn.Parameter(torch.zeros(2))
    module = nn.Module()
    module.p = p
    cfg = TrainConfig(epochs=1, batch_size=10, learning_rate=1.0, optimizer="sgd",
                      momentum=0.0, clip_grad_norm=0.5)
    train(module, lambda b: (torch.tensor([30.0, 40.0]) * p).sum(), torch.zeros(30, 1), cfg)
    # gradient (30, 40) has norm 50: clipped to 0.5, three steps of lr 1 move p by 1.5 in norm
    torch.testing.assert_close(p.detach(), -torch.tensor([0.9, 1.2]))


def test_warmup_and_schedule_reach_the_metrics_log(tmp_path):
    est = Autoencoder(4, epochs=2, batch_size=20, warmup_steps=4, lr_schedule="linear",
                      learning_rate=0.01, log_dir=str(tmp_path), log_every=1, device="cpu",
                      random_state=0).fit(_data())
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in lines if r["kind"] == "step"]
    assert len(lrs) == est.n_steps_ == 12
    expected = [0.01 * lr_factor("linear", t, 12, 4) for t in range(12)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert lrs[0] == pytest.approx(0.01 * 0.25 * (1 - 0 / 12))


def test_tensorboard_needs_the_package(tmp_path):
    from unsup.train.runtime import tensorboard_available

    est = Autoencoder(4, epochs=1, tensorboard=True, log_dir=str(tmp_path), device="cpu")
    if tensorboard_available():
        est.fit(_data())
        assert (tmp_path / "tensorboard").is_dir()
    else:
        with pytest.raises(ImportError, match="pip install tensorboard"):
            est.fit(_data())
    with pytest.raises(ValueError, match="log_dir"):
        Autoencoder(4, epochs=1, tensorboard=True, device="cpu").fit(_data())


def test_resume_a_run_started_without_random_state(tmp_path):
    X = _data()
    kw = dict(hidden_layer_sizes=(8,), epochs=3, batch_size=25, device="cpu")
    ckpt = str(tmp_path / "ck")
    part = Autoencoder(4, max_steps=7, checkpoint_dir=ckpt, **kw).fit(X)
    full = Autoencoder(4, checkpoint_dir=ckpt, resume=True, **kw).fit(X)
    assert part.n_steps_ == 7 and full.n_steps_ == 15
    assert full._seed == part._seed


def test_dropout_draws_from_the_fit_seed_not_the_process_generator():
    # nn.Dropout uses torch's global generator: a seeded fit must not depend on what the
    # process drew before it
    from unsup.autoregressive import CharRNN

    text = "abcabcabd " * 30
    kw = {"hidden_size": 8, "embedding_dim": 4, "dropout": 0.5, "seq_length": 20,
          "epochs": 2, "random_state": 0}
    torch.manual_seed(1)
    a = CharRNN(**kw).fit(text)
    torch.rand(1000)  # the process's generator moves on
    b = CharRNN(**kw).fit(text)
    for (k, va), vb in zip(a.module_.state_dict().items(), b.module_.state_dict().values(),
                           strict=True):
        assert torch.equal(va, vb), k
