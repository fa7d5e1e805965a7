"""SpatialData stores as napari layers: the images of the cells' coordinate systems, then the cells.

:func:`read_spatialdata_layers` is what the reader returns for a SpatialData ``.zarr``;
:func:`spatial_cells_layers` turns already-placed cells
(:func:`napari_annotatability.spatialdata_cells`) into layer data tuples, e.g. to open
a table or coordinate system the reader did not choose::

    cells = nat.spatialdata_cells("xenium.zarr", coordinate_system="aligned")
    add_spatial_cells(viewer, cells, "cell_type")

Every cells layer keeps the table's link (``metadata["spatialdata"]``), so the curation
widget writes the results back into the table.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from napari.utils.notifications import show_warning

from napari_annotatability._napari.layers import cells_layer
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.spatialdata_read import (
    SECTION_KEY,
    CoordinateSystemChoice,
    ImageElement,
    SpatialCells,
    read_spatialdata,
    spatial_cells,
)

logger = logging.getLogger(__name__)


def image_tuple(image: ImageElement, *, visible: bool = True) -> tuple:
    """An image element as an Image layer data tuple (multiscale where it is)."""
    levels = image.levels
    kwargs: dict = {"name": image.name, "visible": visible, "metadata": {"role": "image"}}
    if image.rgb:
        levels = [level.transpose(1, 2, 0) for level in levels]  # (y, x, c)
        kwargs["rgb"] = True
    elif len(image.channels) == 1:
        levels = [level[0] for level in levels]
    else:
        kwargs["channel_axis"] = 0
        kwargs["name"] = [f"{image.name} {c}" for c in image.channels]
        kwargs["blending"] = "additive"
    affine = np.array(image.affine, dtype=float)
    affine[:2, 2] += image.offset
    kwargs["affine"] = affine
    data = levels if len(levels) > 1 else levels[0]
    kwargs["multiscale"] = len(levels) > 1
    return data, kwargs, "image"


def spatial_cells_layers(cells: SpatialCells, label_key: str | None = None) -> list[tuple]:
    """Layer data tuples of placed cells: images first, then one cells layer per section.

    Parameters
    ----------
    cells
        From :func:`napari_annotatability.spatialdata_cells`.
    label_key
        Annotation column to colour by (default: guessed as for AnnData files).
    """
    from napari_annotatability._napari.reader import guess_label_key

    adata = cells.adata
    if label_key is None:
        label_key = guess_label_key(
            adata, exclude=(cells.source.region_key, cells.source.instance_key, SECTION_KEY)
        )
    layers = [image_tuple(image) for image in cells.images]
    several = len(cells.sections) > 1
    base = label_key or "cells"
    region_of = adata.obs[cells.source.region_key].astype(str).to_numpy()
    for section in cells.sections:
        members = np.flatnonzero(region_of == section)
        data, kwargs, kind = cells_layer(
            adata,
            label_key,
            name=f"{section} {base}" if several else base,
            cells=members if several else None,
            library_id=section if several else None,
            size=cells.sizes.get(section),
        )
        kwargs["metadata"]["spatialdata"] = cells.source
        layers.append((data, kwargs, kind))
    return layers


def add_spatial_cells(viewer, cells: SpatialCells, label_key: str | None = None) -> list:
    """Add the layers of :func:`spatial_cells_layers` to ``viewer``; returns them."""
    added = []
    for data, kwargs, kind in spatial_cells_layers(cells, label_key):
        layer = getattr(viewer, f"add_{kind}")(data, **kwargs)
        added.extend(layer if isinstance(layer, list) else [layer])
    return added


def read_spatialdata_layers(path: str | os.PathLike) -> list[tuple]:
    """Layers of every table of a SpatialData store (each with the images under it).

    Where a table's regions sit in several coordinate systems the first one with images
    is taken, and a notification names the others and how to choose one.
    """
    sdata = read_spatialdata(path)
    if not sdata.tables:
        raise AnnotatabilityInputError(
            f"{os.fspath(path)!r} holds no table: there are no cells with expression and "
            "labels to audit (SpatialData keeps them in tables/)."
        )
    layers: list[tuple] = []
    shown_images: set[str] = set()
    for name in sdata.tables:
        try:
            cells = spatial_cells(sdata, table=name, path=path, copy=False)
        except CoordinateSystemChoice as choice:
            show_warning(
                f"{choice} Shown in {choice.likeliest!r}; for another, open it from Python: "
                "nat.spatialdata_cells(path, coordinate_system=...) and add_spatial_cells."
            )
            cells = spatial_cells(
                sdata, table=name, coordinate_system=choice.likeliest, path=path, copy=False
            )
        for data, kwargs, kind in spatial_cells_layers(cells):
            if kind == "image":
                names = kwargs["name"] if isinstance(kwargs["name"], list) else [kwargs["name"]]
                if shown_images.intersection(names):
                    continue
                shown_images.update(names)
            else:
                kwargs["metadata"]["source_path"] = os.fspath(path)
                if len(sdata.tables) > 1:
                    kwargs["name"] = f"{name}: {kwargs['name']}"
            layers.append((data, kwargs, kind))
    return layers
