"""Turn an AnnData into napari layer data tuples: cells as points on the tissue.

Coordinates come from ``obsm["spatial"]`` (x, y) or, when it is absent, from a pair of
obs columns; napari wants (row, column), so x, y pairs are swapped and nothing is
mirrored: a cell at pixel (x, y) of the full-resolution image sits at napari
(row=y, column=x), exactly where an image scaled to full-resolution pixels puts it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.spatial import cKDTree

from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)

#: obsm keys holding (x, y) positions, in order of preference.
OBSM_KEYS = ("spatial", "X_spatial")

#: obs column pairs holding (x, y) positions (matched case-insensitively), in order of
#: preference; the last two are in full-resolution image pixels (Visium, Seurat).
OBS_XY_PAIRS = (
    ("x", "y"),
    ("x_centroid", "y_centroid"),
    ("centroid_x", "centroid_y"),
    ("center_x", "center_y"),
    ("x_position", "y_position"),
    ("x_location", "y_location"),
    ("imagecol", "imagerow"),
    ("pxl_col_in_fullres", "pxl_row_in_fullres"),
)

#: obs column pairs already in (row, column) order (array indices, not pixels).
OBS_ROW_COL_PAIRS = (("array_row", "array_col"), ("row", "col"))

#: Columns in full-resolution image pixels, where Visium images line up.
_PIXEL_COLUMNS = {"imagecol", "pxl_col_in_fullres"}

#: Colour of the cells when there is no annotation to colour them by.
PLAIN_COLOR = "#1f77b4"

#: Colour of cells whose label is missing.
MISSING_COLOR = "#bebebe"


@dataclass(frozen=True)
class CoordinateSource:
    """Where the tissue coordinates of an AnnData come from.

    Attributes
    ----------
    description
        For people: ``"obsm['spatial']"`` or ``"obs['x'], obs['y']"``.
    obsm_key
        The obsm key, or ``None`` for obs columns.
    columns
        The obs columns as (row, column), or ``None`` for obsm.
    image_pixels
        Whether the positions are full-resolution image pixels, where the Visium
        images of ``uns["spatial"]`` line up (obsm ``spatial`` and pixel columns).
    """

    description: str
    obsm_key: str | None = None
    columns: tuple[str, str] | None = None
    image_pixels: bool = False


def coordinate_source(adata: AnnData) -> CoordinateSource:
    """Find the tissue coordinates of ``adata`` (see :func:`tissue_coordinates`).

    Raises
    ------
    AnnotatabilityInputError
        When there is no usable obsm key or obs column pair.
    """
    for key in OBSM_KEYS:
        if key in adata.obsm:
            shape = np.shape(adata.obsm[key])
            if len(shape) != 2 or shape[1] < 2:
                raise AnnotatabilityInputError(
                    f"adata.obsm[{key!r}] has shape {shape}; tissue coordinates need one row "
                    "per cell and at least two columns (x, y)."
                )
            extra = " (x, y; further columns ignored)" if shape[1] > 2 else ""
            return CoordinateSource(f"obsm[{key!r}]{extra}", obsm_key=key, image_pixels=True)
    numeric = {
        str(c).lower(): c
        for c in reversed(adata.obs.columns)  # the first of clashing names wins
        if pd.api.types.is_numeric_dtype(adata.obs[c])
        and not pd.api.types.is_bool_dtype(adata.obs[c])
    }
    for x, y in OBS_XY_PAIRS:
        if x in numeric and y in numeric:
            row, col = numeric[y], numeric[x]
            return CoordinateSource(
                f"obs[{col!r}], obs[{row!r}]",
                columns=(row, col),
                image_pixels=x in _PIXEL_COLUMNS,
            )
    for r, c in OBS_ROW_COL_PAIRS:
        if r in numeric and c in numeric:
            row, col = numeric[r], numeric[c]
            return CoordinateSource(f"obs[{row!r}], obs[{col!r}]", columns=(row, col))
    pairs = ", ".join(f"{a}/{b}" for a, b in OBS_XY_PAIRS + OBS_ROW_COL_PAIRS)
    raise AnnotatabilityInputError(
        "No tissue coordinates found: adata.obsm has no 'spatial' key "
        f"(obsm keys: {sorted(adata.obsm.keys()) or 'none'}) and adata.obs has no numeric "
        f"coordinate column pair (obs columns: {list(adata.obs.columns) or 'none'}). "
        "Add the cell positions as adata.obsm['spatial'] (an n_cells x 2 array of x, y) "
        f"or as one of these obs column pairs: {pairs}."
    )


def tissue_coordinates(adata: AnnData) -> tuple[np.ndarray, str]:
    """Cell positions in napari's (row, column) order, and where they came from.

    ``obsm["spatial"]`` (x, y; also ``obsm["X_spatial"]``) is used when present, else
    the first numeric obs column pair of :data:`OBS_XY_PAIRS` (x, y: swapped) or
    :data:`OBS_ROW_COL_PAIRS` (already row, column), matched case-insensitively.

    Parameters
    ----------
    adata
        The data.

    Returns
    -------
    coords
        ``(n_obs, 2)`` float array of (row, column), in obs order.
    description
        Which key or columns were used, e.g. ``"obsm['spatial']"`` or
        ``"obs['x'], obs['y']"``.

    Raises
    ------
    AnnotatabilityInputError
        When no coordinates exist, or some are NaN or infinite.
    """
    source = coordinate_source(adata)
    if source.obsm_key is not None:
        xy = np.asarray(adata.obsm[source.obsm_key])[:, :2].astype(float)
        coords = xy[:, ::-1].copy()
    else:
        row, col = source.columns
        coords = np.column_stack(
            [adata.obs[c].to_numpy(dtype=float, na_value=np.nan) for c in (row, col)]
        )
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        example = adata.obs_names[np.flatnonzero(bad)[0]]
        raise AnnotatabilityInputError(
            f"Tissue coordinates from {source.description} are NaN or infinite for "
            f"{int(bad.sum())} of {adata.n_obs} cells (first: {example!r}); drop those cells "
            "or give them coordinates before opening the data."
        )
    logger.info("Tissue coordinates of %d cells from %s.", adata.n_obs, source.description)
    return coords, source.description


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
