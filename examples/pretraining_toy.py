"""Unsupervised pre-training on a toy: a 2-2-1 network on ten two-feature points.

The course's small demonstration of the idea behind greedy layer-wise pre-training
(Hinton & Salakhutdinov 2006; Erhan et al. 2010): before using any label, train the first
layer (2 inputs -> 2 sigmoid hidden units) as a 2-2 autoencoder on the ten points, so that
its hidden units describe the inputs; then add the output unit and fine-tune the whole 2-2-1
network on the labels by gradient descent. The same network from random initialisation is
the control. Everything else is identical: the seed of the output unit, the learning rate,
the number of full-batch gradient steps.

Two labellings of the ten points are shown:

* ``clusters`` — the classes are the two groups of points, structure the autoencoder can
  see without labels;
* ``xor`` — the classes are opposite corners, which the input distribution alone says
  little about.

It is a demonstration, not a proof: on ten points both networks usually get there; what
differs is how fast, and how often a run gets stuck. The printed table is what this run
measured; read it rather than assuming pre-training always wins (on ``xor`` it need not).

Run::

    python examples/pretraining_toy.py            # both labellings, 50 seeds, a few seconds
    python examples/pretraining_toy.py --seeds 200 --data xor

All seeds are trained at once as a batch of independent networks (numpy broadcasting), with
the gradients written out by hand: this is backprop for a 2-2-1 network, nothing hidden.

References
----------
Erhan, D., Bengio, Y., Courville, A., Manzagol, P.-A., Vincent, P. and Bengio, S. (2010).
Why does unsupervised pre-training help deep learning? JMLR 11, 625–660.
Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality of data with
neural networks. Science 313(5786), 504–507.
"""

from __future__ import annotations

import argparse

import numpy as np

POINTS = np.array([[1.0, 1.2], [1.3, 0.9], [0.8, 1.1], [1.2, 1.4], [0.9, 0.7],
                   [3.0, 3.2], [3.3, 2.9], [2.8, 3.1], [3.2, 3.4], [2.9, 2.7]])
XOR_POINTS = np.array([[0.1, 0.2], [0.2, 0.05], [0.05, 0.1], [0.9, 0.8], [0.85, 0.95],
                       [0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.85], [0.15, 0.95]])
DATA = {
    "clusters": (POINTS, np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=float)),
    "xor": (XOR_POINTS, np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=float)),
}
CHECKPOINTS = (0, 25, 100, 300, 1000)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def uniform(rng: np.random.Generator, n: int, fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
    """PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    b = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-b, b, size=(n, *shape))


def pretrain_autoencoder(X: np.ndarray, W: np.ndarray, b: np.ndarray, V: np.ndarray,
                         c: np.ndarray, steps: int, lr: float) -> None:
    """Train the 2-2 autoencoder x -> h = σ(xW + b) -> x̂ = hV + c on squared error, in place.

    Shapes carry a leading seed axis S: X (N, 2); W, V (S, 2, 2); b, c (S, 2).
    """
    n = len(X)
    for _ in range(steps):
        H = sigmoid(X @ W + b[:, None, :])                   # (S, N, 2)
        R = H @ V + c[:, None, :]                            # reconstruction
        dR = 2.0 * (R - X) / n                               # d loss / d R
        dH = (dR @ V.transpose(0, 2, 1)) * H * (1.0 - H)     # back through the sigmoid
        V -= lr * H.transpose(0, 2, 1) @ dR
        c -= lr * dR.sum(1)
        W -= lr * X.T @ dH
        b -= lr * dH.sum(1)


def finetune(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, U: np.ndarray,
             d: np.ndarray, steps: int, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch gradient descent on the 2-2-1 network's cross-entropy, in place.

    Returns the loss curve (steps, S) and the final training accuracy (S,).
    """
    n = len(X)
    curve = np.empty((steps, W.shape[0]))
    for t in range(steps):
        H = sigmoid(X @ W + b[:, None, :])                   # (S, N, 2)
        p = sigmoid(H @ U + d[:, None, :])[..., 0]           # (S, N)
        curve[t] = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12), axis=1)
        dz = ((p - y) / n)[..., None]                        # d loss / d output pre-activation
        dH = (dz @ U.transpose(0, 2, 1)) * H * (1.0 - H)
        U -= lr * H.transpose(0, 2, 1) @ dz
        d -= lr * dz.sum(1)
        W -= lr * X.T @ dH
        b -= lr * dH.sum(1)
    H = sigmoid(X @ W + b[:, None, :])
    p = sigmoid(H @ U + d[:, None, :])[..., 0]
    return curve, np.mean((p > 0.5) == y, axis=1)


def experiment(name: str, n_seeds: int, steps: int, pre_steps: int, lr: float
               ) -> dict[str, dict[str, np.ndarray]]:
    X, y = DATA[name]
    X = (X - X.mean(0)) / X.std(0)                           # standardised inputs
    out = {}
    for arm in ("random init", "pre-trained"):
        rng = np.random.default_rng(0)                       # same draws for both arms
        W, b = uniform(rng, n_seeds, 2, (2, 2)), uniform(rng, n_seeds, 2, (2,))
        U, d = uniform(rng, n_seeds, 2, (2, 1)), uniform(rng, n_seeds, 2, (1,))
        V, c = uniform(rng, n_seeds, 2, (2, 2)), uniform(rng, n_seeds, 2, (2,))
        if arm == "pre-trained":  # no labels used here
            pretrain_autoencoder(X, W, b, V, c, pre_steps, lr)
        curve, acc = finetune(X, y, W, b, U, d, steps, lr)
        out[arm] = {"curve": curve, "acc": acc}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=[*DATA, "both"], default="both")
    p.add_argument("--seeds", type=int, default=50, help="independent networks per arm")
    p.add_argument("--steps", type=int, default=1000, help="fine-tuning gradient steps")
    p.add_argument("--pre-steps", type=int, default=1000, help="autoencoder gradient steps")
    p.add_argument("--lr", type=float, default=0.5)
    a = p.parse_args()
    names = list(DATA) if a.data == "both" else [a.data]
    marks = [t for t in CHECKPOINTS if t < a.steps] + [a.steps - 1]
    for name in names:
        res = experiment(name, a.seeds, a.steps, a.pre_steps, a.lr)
        print(f"\n== {name}: 2-2-1 network, 10 points, {a.seeds} seeds, lr {a.lr}, "
              f"{a.steps} fine-tuning steps ==")
        print("mean training cross-entropy after step: " + ", ".join(str(t) for t in marks))
        for arm, r in res.items():
            curve, acc = r["curve"], r["acc"]
            below = np.argmax(curve < 0.1, axis=0).astype(float)
            below[~(curve < 0.1).any(axis=0)] = np.nan
            reached = np.isfinite(below)
            speed = (f"median {np.median(below[reached]):.0f} steps to loss < 0.1 "
                     f"({reached.mean():.0%} of runs get there)" if reached.any()
                     else "no run reaches loss < 0.1")
            print(f"  {arm:12s} " + "  ".join(f"{curve[t].mean():.3f}" for t in marks)
                  + f" | all 10 points right: {np.mean(acc == 1):.0%} of runs, "
                  f"mean accuracy {acc.mean():.3f} | {speed}")
        win = res["pre-trained"]["curve"][-1].mean() < res["random init"]["curve"][-1].mean()
        print(f"  lower final loss: {'pre-trained' if win else 'random init'}")


if __name__ == "__main__":
    main()
