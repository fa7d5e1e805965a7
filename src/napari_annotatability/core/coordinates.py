"""Where cells sit on the tissue: coordinates from ``obsm`` or from obs columns.

Coordinates come from ``obsm["spatial"]`` (x, y) or, when it is absent, from a pair of
obs columns. They are returned in napari's (row, column) order: x, y pairs are swapped
and nothing is mirrored, so a cell at pixel (x, y) of the full-resolution image sits at
(row=y, column=x). Distances between cells are the same either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

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
    dropped
        Columns of the obsm entry beyond x and y (e.g. z), which are not used.
    """

    description: str
    obsm_key: str | None = None
    columns: tuple[str, str] | None = None
    image_pixels: bool = False
    dropped: int = 0

    def dropped_message(self) -> str:
        """What was left out of the coordinates, for people (empty when nothing was)."""
        if not self.dropped:
            return ""
        which = "column 3 (z?)" if self.dropped == 1 else f"columns 3-{2 + self.dropped}"
        return (
            f"adata.obsm[{self.obsm_key!r}] has {2 + self.dropped} columns: the cells are "
            f"placed by x and y (columns 1-2) and {which} is not used. For 3-D data, audit "
            "one section (z plane) at a time."
        )


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
            extra = " (x, y; further columns not used)" if shape[1] > 2 else ""
            return CoordinateSource(
                f"obsm[{key!r}]{extra}", obsm_key=key, image_pixels=True, dropped=shape[1] - 2
            )
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
