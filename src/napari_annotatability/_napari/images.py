"""Visium-style tissue images (``uns["spatial"][library_id]``) as napari Image layers.

scanpy and squidpy keep, per library (sample), ``images`` (``"hires"`` and / or
``"lowres"`` arrays) and ``scalefactors`` (``tissue_hires_scalef``,
``tissue_lowres_scalef``, ``spot_diameter_fullres``). ``obsm["spatial"]`` is in
full-resolution pixels, so an image of scale factor ``s`` gets the napari scale
``(1 / s, 1 / s)``: its pixel ``(r, c)`` lands at full-resolution ``(r / s, c / s)``,
under the cells. Anything missing or odd is skipped with a logged warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

logger = logging.getLogger(__name__)

#: Image resolutions, best first.
RESOLUTIONS = ("hires", "lowres")

#: obs columns that usually name the library of each cell (scanpy / squidpy first).
LIBRARY_COLUMNS = ("library_id", "library", "sample_id", "sample", "slide", "section")


def library_ids(adata: AnnData) -> list[str]:
    """Library ids of ``uns["spatial"]`` that hold a dict of images / scale factors."""
    spatial = adata.uns.get("spatial")
    if spatial is None:
        return []
    if not isinstance(spatial, Mapping):
        logger.warning(
            "uns['spatial'] is a %s, not a dict of libraries; no image is shown.",
            type(spatial).__name__,
        )
        return []
    found = []
    for key, entry in spatial.items():
        if isinstance(entry, Mapping):
            found.append(str(key))
        else:
            logger.warning(
                "uns['spatial'][%r] is a %s, not a dict; it is skipped.", key, type(entry).__name__
            )
    return found


def _entry(adata: AnnData, library_id: str) -> Mapping:
    return adata.uns["spatial"][library_id]


def _positive(value: object) -> float | None:
    try:
        number = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def spot_diameter(adata: AnnData, library_id: str) -> float | None:
    """``scalefactors["spot_diameter_fullres"]`` of a library (full-resolution pixels)."""
    scalefactors = _entry(adata, library_id).get("scalefactors")
    if not isinstance(scalefactors, Mapping) or "spot_diameter_fullres" not in scalefactors:
        return None
    diameter = _positive(scalefactors["spot_diameter_fullres"])
    if diameter is None:
        logger.warning(
            "uns['spatial'][%r]['scalefactors']['spot_diameter_fullres'] is %r, not a positive "
            "number; the point size is taken from the cell spacing instead.",
            library_id,
            scalefactors["spot_diameter_fullres"],
        )
    return diameter


def image_layer(adata: AnnData, library_id: str, *, visible: bool = True) -> tuple | None:
    """The best image of a library as an Image layer data tuple, or ``None``.

    ``hires`` is preferred over ``lowres``; the layer is scaled by ``1 / scalef`` so it
    sits in the full-resolution pixel coordinates of ``obsm["spatial"]``.

    Parameters
    ----------
    adata
        The data; it goes into ``metadata["adata"]``.
    library_id
        A key of ``uns["spatial"]``.
    visible
        Whether the layer starts visible.

    Returns
    -------
    ``(image, kwargs, "image")``, or ``None`` (with a logged warning) when the library
    has no usable image or scale factor.
    """
    entry = _entry(adata, library_id)
    where = f"uns['spatial'][{library_id!r}]"
    images = entry.get("images")
    scalefactors = entry.get("scalefactors")
    if not isinstance(images, Mapping) or not images:
        logger.warning("%s has no 'images'; library %r has no image to show.", where, library_id)
        return None
    if not isinstance(scalefactors, Mapping):
        logger.warning(
            "%s has no 'scalefactors'; its image cannot be placed under the cells and is not "
            "shown.",
            where,
        )
        return None
    for resolution in RESOLUTIONS:
        if resolution not in images:
            continue
        scale_key = f"tissue_{resolution}_scalef"
        scalef = _positive(scalefactors.get(scale_key))
        if scalef is None:
            logger.warning(
                "%s['scalefactors'][%r] is missing or not a positive number (%r); the %s image "
                "is skipped.",
                where,
                scale_key,
                scalefactors.get(scale_key),
                resolution,
            )
            continue
        image = np.asarray(images[resolution])
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            rgb = True
        elif image.ndim == 2:
            rgb = False
        else:
            logger.warning(
                "%s['images'][%r] has shape %s, neither (rows, columns) nor (rows, columns, 3|4); "
                "it is skipped.",
                where,
                resolution,
                image.shape,
            )
            continue
        kwargs = {
            "name": f"{library_id} {resolution} image",
            "rgb": rgb,
            "scale": (1.0 / scalef, 1.0 / scalef),
            "visible": visible,
            "metadata": {
                "adata": adata,
                "library_id": library_id,
                "resolution": resolution,
                "scalefactor": scalef,
            },
        }
        if np.issubdtype(image.dtype, np.floating) and image.size:
            low, high = float(np.nanmin(image)), float(np.nanmax(image))
            kwargs["contrast_limits"] = (0.0, 1.0) if low >= 0 and high <= 1 else (low, high)
        logger.info(
            "Image of library %r: %s, %s pixels, scale factor %g.",
            library_id,
            resolution,
            image.shape[:2],
            scalef,
        )
        return image, kwargs, "image"
    logger.warning(
        "%s has no usable 'hires' or 'lowres' image (found: %s); library %r is shown without "
        "an image.",
        where,
        sorted(map(str, images)),
        library_id,
    )
    return None


def library_column(adata: AnnData, libraries: Sequence[str]) -> str | None:
    """The obs column that says which library each cell belongs to, if any.

    ``obs["library_id"]`` (scanpy / squidpy) or another usual name whose values
    include every library id, else any categorical column whose categories do.
    """
    if not libraries:
        return None
    wanted = {str(lib) for lib in libraries}
    by_name = {str(c).lower(): c for c in reversed(adata.obs.columns)}
    named = [by_name[n] for n in LIBRARY_COLUMNS if n in by_name]
    categorical = [
        c for c in adata.obs.columns if isinstance(adata.obs[c].dtype, pd.CategoricalDtype)
    ]
    for column in [*named, *(c for c in categorical if c not in named)]:
        values = adata.obs[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            present = {str(v) for v in values.cat.categories}
        else:
            present = {str(v) for v in values.dropna().unique()}
        if wanted <= present:
            return column
    return None
