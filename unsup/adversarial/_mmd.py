r"""Maximum mean discrepancy with a mixture of Gaussian kernels (Gretton et al. 2012).

For samples :math:`X = \{x_i\}_{i=1}^{n} \sim P` and :math:`Y = \{y_j\}_{j=1}^{m} \sim Q` and
the kernel :math:`k(a, b) = \sum_{σ \in S} \exp(-\lVert a - b \rVert^2 / (2σ^2))`,

.. math::

    \widehat{MMD}^2_b = \frac{1}{n^2} \sum_{i,i'} k(x_i, x_{i'})
        - \frac{2}{nm} \sum_{i,j} k(x_i, y_j) + \frac{1}{m^2} \sum_{j,j'} k(y_j, y_{j'})

is the biased (V-statistic) estimate, never negative; the unbiased (U-statistic) estimate
drops the diagonal terms :math:`i = i'` and :math:`j = j'` of the within-sample sums (dividing
by :math:`n(n-1)` and :math:`m(m-1)`) and can be slightly negative. With a characteristic
kernel (a Gaussian is), :math:`MMD(P, Q) = 0` iff :math:`P = Q`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["gaussian_kernel", "mmd2", "median_distance"]


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # ‖a‖² + ‖b‖² - 2 a·b, clamped: rounding can make it slightly negative
    d = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return d.clamp_min(0.0)


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidths: Sequence[float]
                    ) -> torch.Tensor:
    """``K[i, j] = Σ_σ exp(-‖a_i - b_j‖² / (2σ²))``, shape ``(len(a), len(b))``."""
    d = _sq_dists(a, b)
    return sum(torch.exp(-d / (2.0 * float(s) ** 2)) for s in bandwidths)  # type: ignore[return-value]


def mmd2(X: torch.Tensor, Y: torch.Tensor, bandwidths: Sequence[float],
         unbiased: bool = False) -> torch.Tensor:
    """The squared MMD between the rows of ``X`` and of ``Y`` (a 0-d tensor, differentiable).

    Parameters
    ----------
    X, Y : Tensor of shape (n, d) and (m, d)
    bandwidths : sequence of float
        The σ of each Gaussian kernel of the mixture (all positive).
    unbiased : bool, default=False
        The U-statistic (needs n, m >= 2) instead of the V-statistic.
    """
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must be 2-D with the same width, got {tuple(X.shape)} and "
                         f"{tuple(Y.shape)}")
    if not len(bandwidths) or any(float(s) <= 0 for s in bandwidths):
        raise ValueError(f"bandwidths must be positive, got {list(bandwidths)}")
    n, m = X.shape[0], Y.shape[0]
    kxx = gaussian_kernel(X, X, bandwidths)
    kyy = gaussian_kernel(Y, Y, bandwidths)
    kxy = gaussian_kernel(X, Y, bandwidths)
    if not unbiased:
        return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD² needs at least two rows in each sample")
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean()


def median_distance(X: torch.Tensor, max_rows: int = 1000) -> float:
    """The median pairwise Euclidean distance of (the first ``max_rows``) rows of ``X``: the
    usual scale of a Gaussian kernel's bandwidth (the median heuristic)."""
    x = X[:max_rows].float()
    d = _sq_dists(x, x)
    iu = torch.triu_indices(len(x), len(x), 1, device=x.device)
    vals = d[iu[0], iu[1]].sqrt()
    med = float(vals.median()) if vals.numel() else 0.0
    return med if med > 0 else 1.0
