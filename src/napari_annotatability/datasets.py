"""Sample data: the bundled Visium DLPFC section and a synthetic tissue with known errors.

:func:`write_spatialdata_store` writes any of them (or your AnnData) as a SpatialData store.
"""

from __future__ import annotations

from importlib.resources import as_file, files

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from napari_annotatability.core.anndata_io import read_anndata
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import inject_label_noise
from napari_annotatability.spatialdata_sample import write_spatialdata_store

__all__ = [
    "SAMPLE_LABEL_KEY",
    "add_label_errors",
    "synthetic_tissue",
    "visium_dlpfc",
    "write_spatialdata_store",
]

#: Annotation column of the bundled sample.
SAMPLE_LABEL_KEY = "layer"


def visium_dlpfc() -> AnnData:
    """The bundled sample: 10x Visium human DLPFC with manual cortical-layer labels.

    3,636 spots x 144 genes (SCTransform-scaled: do not normalise again), labels in
    ``obs["layer"]``, coordinates in ``obsm["spatial"]``. Data: Maynard et al.,
    Nat Neurosci 2021 (spatialLIBD), via the MIT-licensed R package STEAM; see
    ``napari_annotatability/data/README.md`` for the attribution.

    Returns
    -------
    A fresh AnnData (safe to modify).
    """
    resource = files("napari_annotatability") / "data" / "visium_dlpfc_steam.h5ad"
    with as_file(resource) as path:
        adata = read_anndata(path)
    adata.uns["label_key"] = SAMPLE_LABEL_KEY
    return adata


def add_label_errors(
    adata: AnnData,
    label_key: str,
    rate: float = 0.05,
    *,
    seed: int = 0,
    key_added: str | None = None,
) -> np.ndarray:
    """Move a share of the labels to another class at random: known errors to look for.

    Each cell's label moves with probability ``rate`` to a uniformly chosen other class
    (at least one cell moves), as an annotator's slips; e.g. to see what the flags show on
    wrong labels, on the bundled sample whose manual layers hold none the flags can find.

    Parameters
    ----------
    adata
        The data; ``obs[label_key]`` must be categorical.
    label_key
        The annotation.
    rate
        Share of labels to move, in (0, 1).
    seed
        Seed of the draw.
    key_added
        Write the changed labels here (default: over ``obs[label_key]``).

    Returns
    -------
    Boolean mask of the cells whose label moved.
    """
    labels = adata.obs[label_key]
    if not isinstance(labels.dtype, pd.CategoricalDtype):
        raise AnnotatabilityInputError(
            f"adata.obs[{label_key!r}] is {labels.dtype}, not categorical; convert it with "
            f"adata.obs[{label_key!r}] = adata.obs[{label_key!r}].astype('category')."
        )
    classes = labels.cat.categories
    noisy, moved = inject_label_noise(
        labels.cat.codes.to_numpy().astype(np.int64),
        len(classes),
        rate,
        np.random.default_rng(seed),
    )
    adata.obs[key_added or label_key] = pd.Categorical.from_codes(noisy, categories=classes)
    return moved


def synthetic_tissue(
    n_cells: int = 3000,
    n_genes: int = 200,
    n_classes: int = 5,
    *,
    noise_rate: float = 0.1,
    mixed_fraction: float = 0.05,
    markers_per_class: int | None = None,
    fold_change: float = 4.0,
    seed: int = 0,
) -> AnnData:
    """A layered synthetic tissue with known label errors and mixed (intermediate) cells.

    Cells lie in a 1000 x 1000 square cut into ``n_classes`` wavy horizontal layers;
    each layer is a cell type with its own marker genes (``fold_change`` above the
    background). A ``mixed_fraction`` of the cells nearest to a layer boundary express
    a mixture of the two neighbouring types. Then a ``noise_rate`` of the labels is
    flipped uniformly to another class. Counts are Poisson, stored sparse.

    Parameters
    ----------
    n_cells, n_genes, n_classes
        Size of the tissue.
    noise_rate
        Fraction of labels flipped (the injected annotation errors).
    mixed_fraction
        Fraction of cells that are mixtures of two neighbouring types.
    markers_per_class
        Marker genes per type (default: ``n_genes // (2 * n_classes)``, at least 1).
    fold_change
        Marker expression over background.
    seed
        Seed of every random draw.

    Returns
    -------
    AnnData with raw counts in ``X`` (CSR, also ``layers["counts"]``),
    ``obs["label"]`` (annotated, with errors), ``obs["true_label"]``,
    ``obs["is_flipped"]``, ``obs["is_mixed"]`` and ``obsm["spatial"]``.
    """
    if n_classes < 2 or n_cells < n_classes or n_genes < n_classes:
        raise ValueError("Need n_classes >= 2, n_cells >= n_classes and n_genes >= n_classes.")
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, size=(n_cells, 2))
    wave = 40 * np.sin(xy[:, 0] / 1000 * 2 * np.pi * 1.5)
    depth = np.clip((xy[:, 1] + wave) / 1000, 0, 1 - 1e-9) * n_classes
    true = depth.astype(int)
    boundary_distance = np.abs(depth - np.round(depth))
    interior = (np.round(depth) > 0) & (np.round(depth) < n_classes)
    n_mixed = round(mixed_fraction * n_cells)
    candidates = np.flatnonzero(interior)
    mixed = np.zeros(n_cells, dtype=bool)
    mixed[candidates[np.argsort(boundary_distance[candidates])[:n_mixed]]] = True

    markers = markers_per_class or max(1, n_genes // (2 * n_classes))
    base = rng.gamma(2.0, 0.5, size=n_genes)
    profiles = np.tile(base, (n_classes, 1))
    for c in range(n_classes):
        genes = rng.choice(n_genes, size=markers, replace=False)
        profiles[c, genes] *= fold_change
    mix = np.zeros((n_cells, n_classes))
    mix[np.arange(n_cells), true] = 1.0
    upper = np.round(depth).astype(int)
    lower = upper - 1
    share = rng.uniform(0.3, 0.7, size=n_cells)
    rows = np.flatnonzero(mixed)
    mix[rows] = 0.0
    mix[rows, lower[rows]] = share[rows]
    mix[rows, upper[rows]] += 1 - share[rows]
    size = rng.lognormal(np.log(3.0), 0.3, size=n_cells)
    counts = rng.poisson(size[:, None] * (mix @ profiles)).astype(np.float32)

    names = np.array([f"type_{c}" for c in range(n_classes)])
    annotated = true.copy()
    flipped = rng.random(n_cells) < noise_rate
    annotated[flipped] = (true[flipped] + rng.integers(1, n_classes, flipped.sum())) % n_classes
    obs = pd.DataFrame(
        {
            "label": pd.Categorical(names[annotated], categories=names),
            "true_label": pd.Categorical(names[true], categories=names),
            "is_flipped": flipped,
            "is_mixed": mixed,
        },
        index=[f"cell_{i}" for i in range(n_cells)],
    )
    X = sp.csr_matrix(counts)
    adata = AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"gene_{g}" for g in range(n_genes)]))
    adata.layers["counts"] = X.copy()
    adata.obsm["spatial"] = xy
    adata.uns["label_key"] = "label"
    return adata
