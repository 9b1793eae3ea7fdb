"""Hand-crafted against learned features: a linear probe on MNIST (Coates et al. 2011's setting).

    python -m bench.bench_features --atoms 100 --threads 1

Features of mnist5k (probe training) and of the MNIST test set (probe test): raw pixels; HOG
(scikit-image's ``hog``: 9 orientations, 7x7-pixel cells, 2x2-cell blocks, L2-Hys: 324 numbers;
skipped if scikit-image is not installed); and :class:`unsup.decomposition.PatchFeatures` with a
k-means dictionary (triangle encoder) and a sparse-coding dictionary (soft threshold), 6x6
patches, stride 1, quadrant pooling, dictionaries learned on 50,000 patches of mnist5k. Probe:
:func:`unsup.metrics.probes.linear_probe` (standardised features, L-BFGS logistic regression,
C = 1), the same for every representation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from unsup.data import load
from unsup.decomposition import PatchFeatures
from unsup.metrics.probes import linear_probe


def hog_features(X: np.ndarray) -> np.ndarray:
    from skimage.feature import hog

    return np.stack([hog(x.reshape(28, 28), orientations=9, pixels_per_cell=(7, 7),
                         cells_per_block=(2, 2), block_norm="L2-Hys") for x in X])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--atoms", type=int, default=100)
    p.add_argument("--patches", type=int, default=50000)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    train, test = load("mnist5k"), load("mnist-test")
    Xtr, ytr, Xte, yte = train.X, train.y, test.X, test.y
    rows = [("raw pixels", Xtr, Xte, 0.0, 0.0)]
    try:
        t = time.process_time()
        Htr, Hte = hog_features(Xtr), hog_features(Xte)
        rows.append(("HOG (scikit-image)", Htr, Hte, 0.0, time.process_time() - t))
    except ImportError:
        print("scikit-image not installed: HOG skipped")
    for d in ("kmeans", "sparse-coding"):
        t = time.process_time()
        m = PatchFeatures(a.atoms, dictionary=d, n_patches=a.patches, random_state=0).fit(Xtr)
        t_fit = time.process_time() - t
        t = time.process_time()
        Ftr, Fte = m.transform(Xtr), m.transform(Xte)
        rows.append((f"PatchFeatures {d}, K={a.atoms}", Ftr, Fte, t_fit,
                     time.process_time() - t))
    print("| representation | features | dictionary CPU s | encoding CPU s | probe train acc "
          "| probe test acc |\n|---|---|---|---|---|---|")
    for name, Ftr, Fte, t_fit, t_enc in rows:
        res = linear_probe(None, Ftr, ytr, Fte, yte)
        print(f"| {name} | {Ftr.shape[1]} | {t_fit:.1f} | {t_enc:.1f} | "
              f"{res['train_accuracy']:.4f} | {res['accuracy']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
