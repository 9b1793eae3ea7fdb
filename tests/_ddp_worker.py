"""Worker for tests/test_train.py::test_ddp_two_gloo_ranks, launched with
``python -m torch.distributed.run --nproc_per_node 2 tests/_ddp_worker.py OUT``.

Each rank trains the same small Autoencoder through the gradient engine (DDP wraps it, a
DistributedSampler shards the rows) and writes its final weights and loss history to
``OUT/rank<r>.npz``; the test checks the ranks agree and the loss fell.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch


def make_data() -> np.ndarray:
    rng = np.random.RandomState(0)
    Z = rng.standard_normal((301, 3))
    A = rng.standard_normal((3, 12))
    return (Z @ A + 0.05 * rng.standard_normal((301, 12))).astype(np.float32)


def main() -> None:
    import torch.distributed as dist

    import unsup.distributed as ud
    from unsup.autoencoders import Autoencoder

    torch.set_num_threads(1)
    out_dir = sys.argv[1]
    ud.init(backend="gloo")
    assert ud.is_distributed(), "the process group did not start"
    X = make_data()  # every rank passes the full data: the sampler shards it
    ae = Autoencoder(3, hidden_layer_sizes=(16,), epochs=8, batch_size=32, learning_rate=1e-2,
                     device="cpu", random_state=0).fit(X)
    weights = {k.replace(".", "_"): v.detach().numpy() for k, v in ae.module_.state_dict().items()}
    losses = np.array([h["loss"] for h in ae.history_])
    np.savez(os.path.join(out_dir, f"rank{ud.rank()}.npz"), losses=losses,
             world=np.array(ud.world_size()), **weights)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
