"""Turn an AnnData into napari layer data tuples: cells as points on the tissue.

Coordinates come from ``obsm["spatial"]`` (x, y) or, when it is absent, from a pair of
obs columns; napari wants (row, column), so x, y pairs are swapped and nothing is
mirrored: a cell at pixel (x, y) of the full-resolution image sits at napari
(row=y, column=x), exactly where an image scaled to full-resolution pixels puts it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.spatial import cKDTree

from napari_annotatability.core.coordinates import tissue_coordinates
from napari_annotatability.core.errors import AnnotatabilityInputError

if TYPE_CHECKING:
    from napari.layers import Points

logger = logging.getLogger(__name__)

#: Colour of the cells when there is no annotation to colour them by.
PLAIN_COLOR = "#1f77b4"

#: Colour of cells whose label is missing.
MISSING_COLOR = "#bebebe"


def world_coordinates(layer: Points) -> np.ndarray:
    """World coordinates (last two dimensions) of a layer's points (scale and translate)."""
    scale, translate = np.asarray(layer.scale)[-2:], np.asarray(layer.translate)[-2:]
    return np.asarray(layer.data)[:, -2:] * scale + translate


def world_point_size(layer: Points) -> float:
    """A layer's median point size in world units (its scale applied)."""
    size = float(np.median(layer.size)) if np.size(layer.size) else 1.0
    return size * float(np.abs(np.asarray(layer.scale)[-1]))


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


def _named_classes(column: pd.Series) -> list[str]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories]
    return sorted({str(v) for v in column.dropna().unique()})


def label_categories(adata: AnnData, label_key: str) -> list[str]:
    """The classes of ``obs[label_key]`` as strings, in a fixed order.

    A categorical column keeps its category order (scanpy's colours follow it), other
    columns are sorted; ``"nan"`` comes last when some labels are missing. Every layer
    of the AnnData (any library, any subset) uses this one list, so a class keeps its
    colour everywhere.
    """
    column = adata.obs[label_key]
    classes = _named_classes(column)
    if column.isna().any() and "nan" not in classes:
        classes.append("nan")
    return classes


def label_values(
    adata: AnnData, label_key: str, positions: np.ndarray | None = None
) -> pd.Categorical:
    """``obs[label_key]`` (at ``positions``) as strings over :func:`label_categories`."""
    column = adata.obs[label_key]
    if positions is not None:
        column = column.iloc[positions]
    text = column.astype(object).where(column.notna(), "nan").astype(str)
    return pd.Categorical(text.to_numpy(), categories=label_categories(adata, label_key))


def label_colors(adata: AnnData, label_key: str) -> dict[str, str]:
    """The colour of each class of ``obs[label_key]`` (and of ``"nan"``), stable everywhere."""
    named = _named_classes(adata.obs[label_key])
    colours = dict(zip(named, class_colors(adata, label_key, named), strict=True))
    colours.setdefault("nan", MISSING_COLOR)  # cells without a label
    return colours


def cell_features(adata: AnnData, cells: np.ndarray | None = None) -> pd.DataFrame:
    """The obs rows at positions ``cells`` (all when ``None``) with a ``cell_id`` column.

    What hovering a cell shows. Data that name their cells in a ``cell_id`` column
    already keep that column.
    """
    obs = adata.obs if cells is None else adata.obs.iloc[np.asarray(cells, dtype=np.intp)]
    if "cell_id" in obs.columns:
        return obs.reset_index(drop=True)
    return obs.reset_index(names="cell_id").reset_index(drop=True)


def cells_layer(
    adata: AnnData,
    label_key: str | None,
    *,
    name: str | None = None,
    cells: np.ndarray | None = None,
    library_id: str | None = None,
    size: float | None = None,
    visible: bool = True,
    offset: np.ndarray | None = None,
) -> tuple:
    """A Points layer data tuple of the cells, coloured by ``obs[label_key]``.

    Parameters
    ----------
    adata
        The data; it goes into ``metadata["adata"]`` (the single source of truth).
    label_key
        The annotation column to colour by, or ``None`` for one plain colour.
    name
        Layer name (default: ``label_key``, or ``"cells"``).
    cells
        obs positions of the cells to show (``None``: all cells, in obs order); row
        ``i`` of the layer is ``adata.obs.iloc[cells[i]]``.
    library_id
        The library (sample) these cells belong to, if known.
    size
        Point size in data units (default: the median distance to the nearest cell).
    visible
        Whether the layer starts visible.
    offset
        (row, column) added to the coordinates: where the section is drawn when sections
        are laid side by side.

    Returns
    -------
    ``(coords, kwargs, "points")``: coordinates in napari's (row, column) order;
    ``features`` are the obs rows with a leading ``cell_id`` column (hovering shows
    them); ``metadata`` holds ``adata``, ``label_key``, ``cells``, ``coordinates``
    (where they came from) and ``library_id``.

    Raises
    ------
    AnnotatabilityInputError
        For a missing label column or missing / non-finite coordinates.
    """
    if label_key is not None and label_key not in adata.obs.columns:
        raise AnnotatabilityInputError(
            f"Label key {label_key!r} not found in adata.obs; columns: {list(adata.obs.columns)}. "
            "Choose one of these columns (or none, for uncoloured cells)."
        )
    coords, description = tissue_coordinates(adata)
    if cells is not None:
        cells = np.asarray(cells, dtype=np.intp)
        coords = coords[cells]
    if offset is not None:
        coords = coords + np.asarray(offset, dtype=float)
    features = cell_features(adata, cells)
    kwargs = {
        "name": name or label_key or "cells",
        "features": features,
        "size": point_size(coords) if size is None else float(size),
        "border_width": 0,
        "visible": visible,
        "metadata": {
            "adata": adata,
            "label_key": label_key,
            "cells": cells,
            "coordinates": description,
            "library_id": library_id,
        },
    }
    if label_key is None:
        kwargs["face_color"] = PLAIN_COLOR
    else:
        features[label_key] = label_values(adata, label_key, cells)
        kwargs["face_color"] = label_key
        kwargs["face_color_cycle"] = label_colors(adata, label_key)
    return coords, kwargs, "points"
