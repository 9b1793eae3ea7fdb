"""unsup.distributed: single-process no-ops, sharding, and a real 2-process gloo run whose
sharded EM fits must equal the one-process fit on the full data."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

import unsup.distributed as ud

HERE = Path(__file__).resolve().parent


def _worker_module():
    """tests/_dist_worker.py, imported by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_unsup_dist_worker", HERE / "_dist_worker.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_single_process_helpers_are_no_ops(monkeypatch):
    assert not ud.is_distributed()
    assert ud.rank() == 0 and ud.world_size() == 1
    X = np.arange(10).reshape(5, 2)
    assert ud.shard(X) is not None and np.array_equal(ud.shard(X), X)
    t = torch.arange(4.0)
    ud.all_reduce_sum(t)
    assert torch.equal(t, torch.arange(4.0))
    assert ud.all_gather_cat(t) is t and ud.broadcast(t) is t
    monkeypatch.delenv("RANK", raising=False)
    ud.init()  # not under torchrun: nothing to do
    assert not dist.is_initialized()


@pytest.mark.parametrize("n,world", [(10, 2), (7, 2), (5, 3), (2, 4), (1000, 7)])
def test_shard_partitions_rows(n, world, monkeypatch):
    X = np.arange(n)
    monkeypatch.setattr(ud, "world_size", lambda: world)
    parts = []
    for r in range(world):
        monkeypatch.setattr(ud, "rank", lambda r=r: r)
        parts.append(ud.shard(X))
    np.testing.assert_array_equal(np.concatenate(parts), X)  # contiguous, in rank order
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def _can_run_gloo() -> bool:
    return dist.is_available() and dist.is_gloo_available()


@pytest.mark.skipif(not _can_run_gloo(), reason="torch.distributed with gloo is unavailable")
def test_two_process_gloo_fit_equals_single_process(tmp_path):
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent),
                                                             env.get("PYTHONPATH")]))})
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        env.pop(k, None)
    # --standalone: a local rendezvous on a free port chosen by torchrun itself
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(HERE / "_dist_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(2)]
    assert [int(r["world_size"]) for r in ranks] == [2, 2]
    worker = _worker_module()
    X = worker.make_data()
    assert [int(r["n_local"]) for r in ranks] == [300, 299]

    ref = worker.fit_all(X, worker.make_counts())  # one process, all data, same random_state
    for key, want in ref.items():
        if key in ("km_labels", "vi_labels"):  # each rank labels its own shard
            got = np.concatenate([r[key] for r in ranks])
            np.testing.assert_array_equal(got, want)
            continue
        r0, r1 = ranks[0][key], ranks[1][key]
        np.testing.assert_array_equal(r0, r1, err_msg=f"{key} differs across ranks")
        if key.endswith("n_iter"):
            assert int(r0) == int(want), key
        elif key.endswith("_ll"):  # the whole EM trajectory, not only its end
            assert r0.shape == want.shape, key
            np.testing.assert_allclose(r0, want, rtol=1e-5, err_msg=key)
        else:
            np.testing.assert_allclose(r0, want, rtol=1e-5, atol=1e-8, err_msg=key)
