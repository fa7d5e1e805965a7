"""SpatialData stores: audit the cells of a table, write the results back into it.

>>> import napari_annotatability as nat
>>> cells = nat.spatialdata_cells("xenium.zarr", table="table")  # doctest: +SKIP
>>> nat.annotate(cells.adata, "cell_type")  # doctest: +SKIP
>>> nat.write_spatialdata(cells)  # doctest: +SKIP

Needs the optional extra: ``pip install "napari-annotatability[spatialdata]"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari_annotatability.core.spatialdata_read import (
    SpatialCells,
    read_spatialdata,
    spatial_cells,
)
from napari_annotatability.core.spatialdata_write import write_table_back


def spatialdata_cells(
    sdata: str | os.PathLike | Any,
    *,
    table: str | None = None,
    coordinate_system: str | None = None,
    read_only: bool = False,
) -> SpatialCells:
    """The cells of a SpatialData table as an AnnData, placed on the store's images.

    Parameters
    ----------
    sdata
        A SpatialData ``.zarr`` store, or a SpatialData object.
    table
        Which table (default: the only one; several are refused with their names).
    coordinate_system
        Where to place the cells (default: each region's only coordinate system, or the
        only one with an image).
    read_only
        Never write back into this store (:func:`write_spatialdata` refuses).

    Returns
    -------
    :class:`~napari_annotatability.core.spatialdata_read.SpatialCells`: ``.adata`` (a
    copy of the table's rows with ``obsm["spatial"]`` and, for several regions,
    ``obs["section"]``) to audit and curate, ``.source`` (what writing back needs),
    ``.images``.
    """
    if isinstance(sdata, (str, os.PathLike)):
        path = Path(sdata)
        return spatial_cells(
            read_spatialdata(path),
            table=table,
            coordinate_system=coordinate_system,
            path=path,
            read_only=read_only,
            copy=False,  # the object read here is ours alone
        )
    return spatial_cells(
        sdata, table=table, coordinate_system=coordinate_system, read_only=read_only
    )


def write_spatialdata(cells: SpatialCells) -> Path:
    """Write the audit, curated labels and edit log of ``cells.adata`` into its store's table.

    Only the table is replaced, atomically; every other element stays as it is. Refused
    for a store opened read-only or whose table changed on disk since it was read.

    Returns
    -------
    The store's path.
    """
    return write_table_back(cells.adata, cells.source)
