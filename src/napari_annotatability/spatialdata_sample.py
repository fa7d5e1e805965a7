"""Write a spatial AnnData as a SpatialData store: cell shapes, an image and the table.

For trying the SpatialData workflow without a vendor dataset, for tests and benchmarks,
and for people whose data are AnnData files but who want a store::

    from napari_annotatability import datasets
    datasets.write_spatialdata_store(datasets.visium_dlpfc(), "dlpfc.zarr")

The store looks like what ``spatialdata-io`` makes of a Xenium run: a table linked to
cell-boundary polygons (or circles, as for Visium spots) by ``region`` / ``instance_id``, and a
multiscale RGB image (here drawn from the cell density, stained like H&E) placed under
the cells by a scale transformation. Instances are numbered (``instance_id``: 0, 1, ...,
as label masks number cells); the table keeps the cell names as its obs names. Sections
(an obs column) become one element, one image and one coordinate system each, as several
samples of one store do.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import ndimage
from scipy.spatial import cKDTree

from napari_annotatability.core.coordinates import tissue_coordinates
from napari_annotatability.core.spatialdata_read import import_spatialdata

logger = logging.getLogger(__name__)

#: Image pixels per median cell spacing.
PIXELS_PER_CELL = 4


def write_spatialdata_store(
    adata: AnnData,
    path: str | os.PathLike,
    *,
    shapes: str = "polygons",
    section_key: str | None = None,
    image: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``adata`` as a SpatialData ``.zarr`` store.

    Parameters
    ----------
    adata
        Cells with tissue coordinates (``obsm["spatial"]`` or obs columns).
    path
        The store to write.
    shapes
        ``"polygons"`` (hexagonal cell boundaries) or ``"circles"`` (spots).
    section_key
        obs column splitting the cells into sections: one element
        (``"<section>_cells"``), image and coordinate system (the section's name) each;
        characters other than letters, digits, ``_``, ``.`` and ``-`` become ``_``.
    image
        Also write an H&E-like image under each section.
    overwrite
        Replace an existing store.

    Returns
    -------
    The store's path.
    """
    spatialdata = import_spatialdata()
    from spatialdata.models import TableModel

    path = Path(path)
    if shapes not in ("polygons", "circles"):
        raise ValueError(f"shapes must be 'polygons' or 'circles', not {shapes!r}")
    coords, _ = tissue_coordinates(adata)
    xy = coords[:, ::-1]
    if section_key is None:
        groups = {"global": np.arange(adata.n_obs)}
    else:
        values = adata.obs[section_key].astype(str).to_numpy()
        groups = {str(v): np.flatnonzero(values == v) for v in dict.fromkeys(values)}
    table = adata.copy()
    table.obs_names = table.obs_names.astype(str)
    regions = np.empty(adata.n_obs, dtype=object)
    elements: dict = {"images": {}, "shapes": {}}
    for section, members in groups.items():
        section = re.sub(r"[^A-Za-z0-9_.-]", "_", section)  # spatialdata's element names
        region = "cell_boundaries" if section_key is None else f"{section}_cells"
        regions[members] = region
        elements["shapes"][region] = _cell_shapes(xy[members], members, shapes, section)
        if image:
            elements["images"][f"{region}_image"] = _density_image(xy[members], section)
    table.obs["region"] = pd.Categorical(regions, categories=list(dict.fromkeys(regions)))
    table.obs["instance_id"] = np.arange(adata.n_obs)
    for key in ("spatial", "X_spatial"):
        table.obsm.pop(key, None)
    table.uns.pop("spatial", None)
    table = TableModel.parse(
        table,
        region=list(table.obs["region"].cat.categories),
        region_key="region",
        instance_key="instance_id",
    )
    sdata = spatialdata.SpatialData(**elements, tables={"table": table})
    sdata.write(path, overwrite=overwrite)
    logger.info("Wrote %d cells in %d section(s) to %s.", adata.n_obs, len(groups), path)
    return path


def _spacing(xy: np.ndarray) -> float:
    if len(xy) < 2:
        return 1.0
    distances, _ = cKDTree(xy).query(xy, k=2)
    return float(np.median(distances[:, 1])) or 1.0


def _cell_shapes(xy: np.ndarray, instance_ids: np.ndarray, kind: str, system: str):
    import geopandas as gpd
    import shapely
    from spatialdata.models import ShapesModel
    from spatialdata.transformations import Identity

    radius = 0.5 * _spacing(xy)
    if kind == "circles":
        frame = gpd.GeoDataFrame(
            {"radius": np.full(len(xy), radius)},
            geometry=shapely.points(xy),
            index=pd.Index(instance_ids),
        )
    else:
        angles = np.linspace(0, 2 * np.pi, 7)[:-1] + np.pi / 6
        ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius * 0.95
        vertices = xy[:, None, :] + ring[None, :, :]
        frame = gpd.GeoDataFrame(geometry=shapely.polygons(vertices), index=pd.Index(instance_ids))
    return ShapesModel.parse(frame, transformations={system: Identity()})


def _density_image(xy: np.ndarray, system: str):
    """An H&E-like RGB image of the cell density, scaled to sit under the cells."""
    from spatialdata.models import Image2DModel
    from spatialdata.transformations import Scale, Sequence, Translation

    pixel = _spacing(xy) / PIXELS_PER_CELL
    low = xy.min(axis=0) - 4 * pixel * PIXELS_PER_CELL
    cols, rows = np.ceil((xy.max(axis=0) - low) / pixel).astype(int) + 4 * PIXELS_PER_CELL
    density = np.zeros((rows, cols))
    where = ((xy - low) / pixel).astype(int)
    np.add.at(density, (where[:, 1], where[:, 0]), 1.0)
    density = ndimage.gaussian_filter(density, PIXELS_PER_CELL * 0.6)
    density /= density.max() or 1.0
    # eosin pink background, haematoxylin purple where cells are
    pink, purple = np.array([240, 200, 220]), np.array([90, 60, 150])
    rgb = pink[:, None, None] + (purple - pink)[:, None, None] * density[None]
    transform = Sequence(
        [Scale([pixel, pixel], axes=("x", "y")), Translation(low, axes=("x", "y"))]
    )
    return Image2DModel.parse(
        rgb.astype(np.uint8),
        dims=("c", "y", "x"),
        c_coords=["r", "g", "b"],
        transformations={system: transform},
        scale_factors=[2],
    )
