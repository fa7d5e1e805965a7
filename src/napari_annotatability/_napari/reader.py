"""napari reader for AnnData files (``.h5ad``, ``.zarr``) and SpatialData stores.

Images under the cells; SpatialData stores are read by
:mod:`~napari_annotatability._napari.spatialdata_layers`.

:func:`napari_get_reader` is the npe2 ``readers`` command; :func:`anndata_layers`
turns a loaded AnnData into layer data tuples (also used by the sample data). The
reader only returns layers: it never opens widgets.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from napari.utils.notifications import show_warning

from napari_annotatability._napari.images import (
    image_layer,
    library_column,
    library_ids,
    spot_diameter,
)
from napari_annotatability._napari.layers import cells_layer
from napari_annotatability.core.anndata_io import read_anndata
from napari_annotatability.core.coordinates import coordinate_source, tissue_coordinates
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.keys import duplicated_cell_ids
from napari_annotatability.core.layout import overlaid, side_by_side
from napari_annotatability.core.spatialdata_read import is_spatialdata_store

logger = logging.getLogger(__name__)

#: Annotation column names tried first (case-insensitive), best first.
PREFERRED_LABEL_KEYS = (
    "cell_type",
    "celltype",
    "cell_types",
    "annotation",
    "cell_class",
    "cluster",
    "clusters",
    "leiden",
    "louvain",
    "label",
    "labels",
)

#: Parts of column names that suggest an annotation, when no preferred name exists.
_LABEL_STEMS = ("celltype", "cell_type", "annot", "cluster", "class", "leiden", "louvain", "label")

#: Above this many distinct values a numeric column is not taken as labels.
_MAX_NUMERIC_CLASSES = 200


def napari_get_reader(path: str | Sequence[str]) -> Callable[..., list[tuple]] | None:
    """npe2 reader hook: ``.h5ad`` files, AnnData ``.zarr`` folders and SpatialData stores.

    Parameters
    ----------
    path
        A path, or a list of paths (all must be AnnData).

    Returns
    -------
    :func:`read_layers`, or ``None`` for anything else (so other readers are tried).
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if len(paths) == 1 and is_spatialdata_store(paths[0]):
        from napari_annotatability._napari.spatialdata_layers import read_spatialdata_layers

        _overview_in_current_viewer()
        return read_spatialdata_layers
    if not paths or not all(_is_anndata_path(p) for p in paths):
        return None
    _overview_in_current_viewer()
    return read_layers


def _overview_in_current_viewer() -> None:
    """Large sections draw as an overview image when zoomed out (see ``_qt.overview``)."""
    from napari import current_viewer

    viewer = current_viewer()
    if viewer is not None:
        from napari_annotatability._qt.overview import install_overview

        install_overview(viewer)


def _is_anndata_path(path: str | os.PathLike) -> bool:
    text = os.fspath(path).rstrip("/\\")
    if text.lower().endswith(".h5ad"):
        return True
    return text.lower().endswith(".zarr") and _is_anndata_zarr(Path(text))


def _is_anndata_zarr(path: Path) -> bool:
    """Whether a ``.zarr`` folder holds an AnnData (not, say, an OME-Zarr image)."""
    if not path.is_dir():
        return False
    for name, attributes in ((".zattrs", None), ("zarr.json", "attributes")):
        meta = path / name
        if meta.is_file():
            try:
                content = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            attrs = content.get(attributes, {}) if attributes else content
            if isinstance(attrs, dict) and attrs.get("encoding-type") == "anndata":
                return True
    return (path / "obs").is_dir() and (path / "var").is_dir()


def read_layers(path: str | Sequence[str]) -> list[tuple]:
    """Read AnnData file(s) into layer data tuples: images first, then the cells."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[tuple] = []
    for one in paths:
        adata = read_anndata(one)
        duplicated = duplicated_cell_ids(adata)
        if duplicated:
            adata.obs_names_make_unique()
            show_warning(
                f"{Path(one).name}: the cell ids (obs_names) were not unique ({duplicated}); "
                "they were made unique by appending -1, -2, ... so that edits can be keyed "
                "by cell id. Saved files and exported tables use the new ids."
            )
        label_key = guess_label_key(adata)
        logger.info("Opened %s: %d cells, label key %r.", one, adata.n_obs, label_key)
        for data, kwargs, kind in anndata_layers(adata, label_key):
            # where the data came from: saving refuses to overwrite it unless confirmed
            kwargs["metadata"]["source_path"] = os.fspath(one)
            layers.append((data, kwargs, kind))
    return layers


def _usable_labels(adata: AnnData, key: object) -> str | None:
    """Why ``obs[key]`` cannot be an annotation, or ``None`` when it can."""
    if not isinstance(key, str) or key not in adata.obs.columns:
        return f"it is not an obs column (columns: {list(adata.obs.columns)})"
    column = adata.obs[key]
    if column.notna().sum() == 0:
        return "it has no values"
    if pd.api.types.is_float_dtype(column) and not np.all(
        np.mod(column.dropna().to_numpy(), 1) == 0
    ):
        return "it holds continuous numbers"
    if pd.api.types.is_numeric_dtype(column) and column.nunique() > _MAX_NUMERIC_CLASSES:
        return f"it holds {column.nunique()} distinct numbers"
    return None


def guess_label_key(adata: AnnData, *, exclude: Sequence[str] = ()) -> str | None:
    """The annotation column to colour the cells by.

    ``uns["label_key"]`` when it names a usable obs column; else the first categorical
    obs column with a preferred name (:data:`PREFERRED_LABEL_KEYS`), then one whose
    name suggests labels (type, annotation, cluster, class, ...), then any categorical
    column with 2 or more classes (and fewer classes than cells); else ``None``.
    """
    stored = adata.uns.get("label_key")
    if stored is not None:
        problem = _usable_labels(adata, stored)
        if problem is None:
            return str(stored)
        logger.warning("uns['label_key'] is %r, but %s; trying other columns.", stored, problem)
    excluded = set(exclude) | {library_column(adata, library_ids(adata))}
    candidates = []
    for column in adata.obs.columns:
        values = adata.obs[column]
        if column in excluded or not isinstance(values.dtype, pd.CategoricalDtype):
            continue
        n_classes = values.nunique()
        if n_classes >= 2 and (n_classes < adata.n_obs or adata.n_obs <= 2):
            candidates.append(column)
    by_name = {str(c).lower(): c for c in reversed(candidates)}
    for name in PREFERRED_LABEL_KEYS:
        if name in by_name:
            return by_name[name]
    for column in candidates:
        if any(stem in str(column).lower() for stem in _LABEL_STEMS):
            return column
    return candidates[0] if candidates else None


def anndata_layers(
    adata: AnnData,
    label_key: str | None,
    *,
    library_key: str | None = None,
    name: str | None = None,
) -> list[tuple]:
    """Layer data tuples of an AnnData: tissue images first, then the cells.

    One group of layers per library: the library's image (``uns["spatial"]``) and a
    Points layer of its cells, found through an obs column whose values are the
    library ids (``obs["library_id"]``, or ``library_key``). Libraries share one
    coordinate frame, so only the first group starts visible. Without such a column:
    one Points layer of all cells and every image.

    Parameters
    ----------
    adata
        The data (kept in every layer's ``metadata["adata"]``).
    label_key
        Annotation column to colour the cells by, or ``None``.
    library_key
        obs column grouping the cells into samples (default: found from the library
        ids of ``uns["spatial"]``); groups without an image still get their own layer.
    name
        Name of the cells layer (default: ``label_key`` or ``"cells"``), prefixed with
        the library id when there are several.

    Returns
    -------
    Layer data tuples.
    """
    source = coordinate_source(adata)  # fails early, and clearly, without coordinates
    if source.dropped:
        show_warning(source.dropped_message())
    libraries = library_ids(adata)
    if libraries and not source.image_pixels:
        logger.warning(
            "The cell positions come from %s, not from image pixels: the images of "
            "uns['spatial'] would not line up and are not shown.",
            source.description,
        )
        libraries = []
    key = library_key if library_key is not None else library_column(adata, libraries)
    if key is not None and key not in adata.obs.columns:
        raise AnnotatabilityInputError(
            f"Library key {key!r} not found in adata.obs; columns: {list(adata.obs.columns)}."
        )
    base = name or label_key or "cells"
    if key is None:
        images = [image_layer(adata, lib, visible=i == 0) for i, lib in enumerate(libraries)]
        single = libraries[0] if len(libraries) == 1 else None
        size = spot_diameter(adata, single) if single is not None else None
        cells = [cells_layer(adata, label_key, name=base, library_id=single, size=size)]
        return [layer for layer in images if layer is not None] + cells

    values = adata.obs[key].astype(object).where(adata.obs[key].notna(), "nan").astype(str)
    values = values.to_numpy()
    if library_key is None:
        groups = list(libraries)
    elif isinstance(adata.obs[key].dtype, pd.CategoricalDtype):
        groups = [str(c) for c in adata.obs[key].cat.categories if str(c) in set(values)]
    else:
        groups = sorted(set(values), key=_natural)
    leftover = ~np.isin(values, groups)
    several = len(groups) + int(leftover.any()) > 1
    logger.info("Cells grouped into %d libraries by obs[%r].", len(groups), key)
    coords, _ = tissue_coordinates(adata)
    members = {group: np.flatnonzero(values == group) for group in groups}
    if leftover.any():
        members[None] = np.flatnonzero(leftover)
    images = {group: image_layer(adata, group) for group in members if group in libraries}
    images = {group: image for group, image in images.items() if image is not None}
    shifts = _section_shifts(coords, members, images)
    cells = []
    for group, rows in members.items():
        if group in images:
            images[group][1]["translate"] = tuple(shifts[group])
        if rows.size == 0:
            continue
        cells.append(
            cells_layer(
                adata,
                label_key,
                name=(f"{group} {base}" if group is not None else f"other {base}")
                if several
                else base,
                cells=rows,
                library_id=group,
                size=spot_diameter(adata, group) if group in libraries else None,
                offset=shifts[group],
            )
        )
    return list(images.values()) + cells


def _section_shifts(coords: np.ndarray, members: dict, images: dict) -> dict:
    """(row, column) shift of each group: side by side when they lie on top of each other.

    Groups that are parts of one section (regions) keep their places; separate sections
    in one frame (libraries of one pixel frame) are laid left to right, each with its image
    (``images``: the groups' Image layer data tuples, scaled to full-resolution pixels).
    """
    groups = np.empty(len(coords), dtype=object)
    for group, rows in members.items():
        groups[rows] = str(group)
    if not overlaid(coords, groups):
        return {group: np.zeros(2) for group in members}
    boxes = []
    for group, rows in members.items():
        low, high = coords[rows].min(axis=0), coords[rows].max(axis=0)
        if group in images:
            image, kwargs, _ = images[group]
            extent = np.asarray(image.shape[:2], dtype=float) * np.asarray(kwargs["scale"])
            low, high = np.minimum(low, 0.0), np.maximum(high, extent)
        boxes.append((low, high))
    logger.info("The %d sections overlap in one frame: laid side by side.", len(members))
    return dict(zip(members, side_by_side(boxes), strict=True))


def _natural(value: str) -> tuple:
    """Numbers in numeric order, then text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)
