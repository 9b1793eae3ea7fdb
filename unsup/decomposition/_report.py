"""Report sections of the decomposition family (``report_section``): PCA's components and the
sparse-coding models' (SparseCoding, PSD) dictionaries.

The dictionary's atoms drawn as images (when rows are images), and the sparsity of the codes
of the report's data. Drawing never changes the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.decomposition.patch_features import PatchFeatures, _geometry
from unsup.decomposition.pca import PCA
from unsup.decomposition.psd import PSD
from unsup.decomposition.sparse_coding import SparseCoding
from unsup.report.hooks import SectionContext, report_section

__all__ = ["dictionary_atoms", "pca_components", "patch_atoms"]

_MAX_FILTERS = 50


@report_section(PCA, title="First-layer filters (principal components)", order=50)
def pca_components(model: Any, ctx: SectionContext) -> None:
    """The principal directions drawn as images."""
    comp = np.asarray(model.components_)
    ctx.image_rows(comp[:_MAX_FILTERS], f"The first {min(len(comp), _MAX_FILTERS)} of "
                   f"{len(comp)} principal directions, each scaled to its own range.")


@report_section(SparseCoding, PSD, title="Dictionary atoms", order=50)
def dictionary_atoms(model: Any, ctx: SectionContext) -> None:
    from unsup.report.plots import image_grid

    D = np.asarray(model.components_)
    if ctx.X is not None and len(ctx.X):
        # PSD's transform is the encoder's dense prediction: count the optimal codes' zeros
        Z = getattr(model, "sparse_codes", model.transform)(np.asarray(ctx.X)[:500])
        used = (Z != 0).mean(0)
        ctx.report.text(f"{D.shape[0]} atoms; on {len(Z)} rows of the data a code has "
                        f"{(Z != 0).sum(1).mean():.1f} non-zero entries on average; "
                        f"{int((used == 0).sum())} atoms are never used.")
        order = np.argsort(-used, kind="stable")  # the most used atoms first
    else:
        order = np.arange(D.shape[0])
    if ctx.image_shape is None or int(np.prod(ctx.image_shape)) != D.shape[1]:
        ctx.report.text(f"Atoms have {D.shape[1]} features (no image shape to draw them).")
        return
    n = min(100, D.shape[0])
    ctx.report.figure(image_grid(D[order[:n]], ctx.image_shape),
                      caption=f"the {n} most used atoms (each scaled to its own range)")


@report_section(PatchFeatures, title="Patch dictionary", order=50)
def patch_atoms(model: Any, ctx: SectionContext) -> None:
    """The atoms as patches, taken back from the whitened space (W⁻¹ a, plus the mean)."""
    from unsup.report.plots import image_grid

    _, _, ph, pw = _geometry(int(model.n_features_in_), model.image_shape,
                             int(model.patch_size))
    atoms = np.asarray(model.atoms_) @ np.linalg.inv(np.asarray(model.zca_)) + model.patch_mean_
    n = min(100, atoms.shape[0])
    ctx.report.figure(image_grid(atoms[:n], (ph, pw)),
                      caption=f"{n} of {atoms.shape[0]} atoms ({model.dictionary}), {ph}×{pw} "
                      "patches, unwhitened, each scaled to its own range")
