"""Turn an AnnData into napari layer data tuples: cells as points on the tissue."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.spatial import cKDTree

from napari_annotatability.core.errors import AnnotatabilityInputError


def tissue_coordinates(adata: AnnData) -> np.ndarray:
    """Cell positions in napari's (row, column) order from ``obsm["spatial"]`` (x, y)."""
    if "spatial" not in adata.obsm:
        raise AnnotatabilityInputError(
            "No tissue coordinates: adata.obsm['spatial'] is missing; "
            f"obsm holds {sorted(adata.obsm.keys()) or 'nothing'}."
        )
    xy = np.asarray(adata.obsm["spatial"], dtype=float)[:, :2]
    return xy[:, ::-1].copy()


def point_size(coords: np.ndarray) -> float:
    """A point size from the median distance to the nearest other cell."""
    if len(coords) < 2:
        return 1.0
    distances, _ = cKDTree(coords).query(coords, k=2)
    nearest = distances[:, 1]
    nearest = nearest[nearest > 0]
    return float(np.median(nearest)) if nearest.size else 1.0


def class_colors(adata: AnnData, label_key: str, classes: list[str]) -> list[str]:
    """One colour per class, stable across layers.

    scanpy's ``uns[f"{label_key}_colors"]`` when it fits, else a fixed palette in
    class order.
    """
    stored = adata.uns.get(f"{label_key}_colors")
    if stored is not None and len(stored) == len(classes):
        return [str(c) for c in stored]
    from scanpy.plotting.palettes import default_20, default_102

    palette = default_20 if len(classes) <= 20 else default_102
    return [palette[i % len(palette)] for i in range(len(classes))]


def cells_layer(adata: AnnData, label_key: str, *, name: str | None = None) -> tuple:
    """A Points layer data tuple of the cells coloured by ``obs[label_key]``.

    Every per-cell column of ``obs`` goes into ``features`` (hovering shows it) and
    the AnnData itself into ``metadata["adata"]``.
    """
    if label_key not in adata.obs.columns:
        raise AnnotatabilityInputError(
            f"Label key {label_key!r} not found in adata.obs; columns: {list(adata.obs.columns)}."
        )
    coords = tissue_coordinates(adata)
    features = adata.obs.reset_index(names="cell_id")
    features[label_key] = pd.Categorical(features[label_key].astype(str))
    classes = list(features[label_key].cat.categories)
    kwargs = {
        "name": name or label_key,
        "features": features,
        "face_color": label_key,
        "face_color_cycle": class_colors(adata, label_key, classes),
        "size": point_size(coords),
        "border_width": 0,
        "metadata": {"adata": adata, "label_key": label_key},
    }
    return coords, kwargs, "points"
