"""A deep belief net on binarised MNIST: greedy PCD-trained RBMs, then the AIS lower bound.

Trains ``DBN([500, 2000])`` on the binarised ``mnist5k`` digits (every layer's RBM with
persistent chains), estimates log Z of the top RBM by AIS (which samples its larger, hidden
layer: ``ais_side="auto"``), checks the estimate against the certain lower bound from the
training states, and prints the variational lower bound on log p(v) for the training set and
the binarised MNIST test set, beside the first layer alone as an RBM.

    python examples/dbn_mnist.py --updates 20000 --top-updates 10000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", default="500,2000")
    p.add_argument("--updates", type=int, default=20000, help="updates of the first RBM")
    p.add_argument("--top-updates", type=int, default=10000, help="updates of the others")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--betas", type=int, default=30000, help="AIS temperatures")
    p.add_argument("--runs", type=int, default=100, help="AIS runs")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--save", default=None, help="write the fitted DBN here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from unsup.data import load
    from unsup.energy import DBN, BernoulliRBM

    X = load("mnist5k", binarize=0.5).X
    Xt = load("mnist-test", binarize=0.5).X
    layers = [int(s) for s in args.layers.split(",")]
    n_up = [args.updates] + [args.top_updates] * (len(layers) - 1)
    dbn = DBN(layers, n_updates=n_up, learning_rate=args.lr, persistent=True,
              ais_runs=args.runs, ais_betas=args.betas, random_state=0)
    t0 = time.perf_counter()
    dbn.fit(X)
    fit_s = time.perf_counter() - t0
    if args.save:
        dbn.save(args.save)
    out: dict = {"layers": layers, "updates": n_up, "lr": args.lr, "fit_seconds": fit_s}
    # the first layer alone, as an RBM (its own AIS over the visibles)
    rbm = BernoulliRBM(layers[0], ais_runs=args.runs, ais_betas=args.betas, random_state=0)
    rbm.components_ = np.asarray(dbn.weights_[0])
    rbm.intercept_visible_ = np.asarray(dbn.visible_biases_[0])
    rbm.intercept_hidden_ = np.asarray(dbn.hidden_biases_[0])
    rbm.base_rate_logits_ = BernoulliRBM._base_rate(torch.as_tensor(X.mean(0))).numpy()
    rbm.n_features_in_ = X.shape[1]
    r1 = rbm.estimate_log_partition()
    rbm.set_log_partition(r1)  # measuring never stores log Z: cache it explicitly
    out["first_layer_rbm"] = {"train": rbm.score(X), "test": rbm.score(Xt), "log_z": r1.log_z,
                              "log_z_interval": [r1.log_z_low, r1.log_z_high]}
    t0 = time.perf_counter()
    res = dbn.estimate_log_partition()
    out["ais_seconds"] = time.perf_counter() - t0
    dbn.set_log_partition(res)
    out.update(log_z=res.log_z, log_z_interval=[res.log_z_low, res.log_z_high],
               log_z_check=res.check, kind=dbn.likelihood_kind_)
    out["train_bound"] = float(np.mean(dbn.score_samples(X)))
    out["test_bound"] = float(np.mean(dbn.score_samples(Xt)))
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
