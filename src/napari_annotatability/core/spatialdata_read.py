"""Cells of a SpatialData store as an AnnData: the table's rows, placed by their elements.

A SpatialData table annotates one or more *regions* (shapes, labels or points elements)
through ``uns["spatialdata_attrs"]``: ``region_key`` (an obs column naming each row's
element) and ``instance_key`` (an obs column naming each row's instance in it). Here the
rows of one table become the cells of an AnnData whose ``obsm["spatial"]`` holds their
centres (circle centres, polygon and label-mask centroids, points) transformed into a
coordinate system, so that they land on the images of that coordinate system.

Several regions are several *sections*: each keeps its own coordinate system, and
sections whose coordinate systems would overlap are laid side by side
(:attr:`SpatialCells.offsets`). Every choice the store leaves open (which table, which
coordinate system) is made by the caller or refused with the choices named.

spatialdata is an optional dependency (``pip install "napari-annotatability[spatialdata]"``),
imported only here and in :mod:`~napari_annotatability.core.spatialdata_write`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.layout import side_by_side

logger = logging.getLogger(__name__)

#: obs column naming each cell's section when a table annotates several regions.
SECTION_KEY = "section"

#: How to get spatialdata when it is missing.
INSTALL_HINT = 'pip install "napari-annotatability[spatialdata]"'


def import_spatialdata() -> Any:
    """The spatialdata module, or a clear error saying how to install it."""
    try:
        import spatialdata
    except ImportError as err:
        raise AnnotatabilityInputError(
            f"Reading and writing SpatialData stores needs the spatialdata package: {INSTALL_HINT}"
        ) from err
    return spatialdata


def is_spatialdata_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a SpatialData ``.zarr`` folder (root attributes name spatialdata)."""
    path = Path(path)
    if not path.is_dir():
        return False
    for name, nested in (("zarr.json", "attributes"), (".zattrs", None)):
        meta = path / name
        if not meta.is_file():
            continue
        try:
            content = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        attrs = content.get(nested, {}) if nested else content
        if isinstance(attrs, dict) and "spatialdata_attrs" in attrs:
            return True
    # stores written before the root attribute existed: element groups, no AnnData at root
    # ("labels" alone is not enough: OME-Zarr images keep their masks there)
    groups = {"images", "points", "shapes", "tables"}
    return any((path / g).is_dir() for g in groups) and not (path / "obs").is_dir()


def store_fingerprint(path: str | os.PathLike, table_name: str) -> tuple:
    """Sizes and modification times of a table's files and the store's root metadata.

    Equal fingerprints before and after mean the table was not rewritten in between
    (writing it, or any element through spatialdata, changes the root metadata too).
    """
    path = Path(path)
    entries = []
    for name in ("zarr.json", ".zattrs", ".zgroup", ".zmetadata"):
        if (path / name).is_file():
            stat = (path / name).stat()
            entries.append((name, stat.st_size, stat.st_mtime_ns))
    table_dir = path / "tables" / table_name
    for root, _dirs, files in os.walk(table_dir):
        for name in files:
            file = Path(root, name)
            stat = file.stat()
            entries.append((str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


@dataclass
class SpatialDataSource:
    """Where the cells of an AnnData came from in a SpatialData store.

    Attributes
    ----------
    path
        The store (``None`` for a SpatialData object in memory only).
    table_name
        The table the cells are rows of.
    region_key, instance_key
        The table's obs columns naming each row's element and instance.
    rows
        Positions, in the table, of the AnnData's rows (in order).
    n_table_rows
        Rows of the whole table (the AnnData may hold fewer).
    added_obsm
        obsm keys made here (the positions), not written back.
    added_obs
        obs columns made here (the section), not written back.
    fingerprint
        :func:`store_fingerprint` when read; a write refuses a store changed since.
    read_only
        Opened for reading only: writing back is refused.
    sdata
        The SpatialData object the cells were taken from, when results are to be mirrored
        into its table in memory (napari-spatialdata's layers); else ``None``.
    """

    path: Path | None
    table_name: str
    region_key: str
    instance_key: str
    rows: np.ndarray
    n_table_rows: int
    added_obsm: tuple[str, ...] = ("spatial",)
    added_obs: tuple[str, ...] = ()
    fingerprint: tuple = ()
    read_only: bool = False
    sdata: Any = field(default=None, repr=False)

    def describe(self) -> str:
        """For people: which table of which store."""
        where = self.path.name if self.path is not None else "a SpatialData object"
        return f"table {self.table_name!r} of {where}"


@dataclass
class ImageElement:
    """An image of a coordinate system, ready to be shown under the cells.

    Attributes
    ----------
    name
        The element's name.
    levels
        The image at each resolution, full resolution first (dask arrays, ``(c, y, x)``).
    channels
        Channel names.
    affine
        ``3 x 3`` affine from image pixels (row, column) to the coordinate system.
    coordinate_system
        Where it sits.
    offset
        (row, column) shift of its section when sections are laid side by side.
    """

    name: str
    levels: list
    channels: list[str]
    affine: np.ndarray
    coordinate_system: str
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))

    @property
    def rgb(self) -> bool:
        """Three or four 8-bit channels: shown as one colour image."""
        return len(self.channels) in (3, 4) and np.dtype(self.levels[0].dtype) == np.uint8


@dataclass
class SpatialCells:
    """The cells of one SpatialData table, placed in coordinate systems.

    Attributes
    ----------
    adata
        A copy of the table's rows with ``obsm["spatial"]`` (x, y in the coordinate
        system, plus the section offset) and, for several regions, ``obs["section"]``.
    source
        Where the rows came from; what writing back needs.
    sections
        Section name (the region) -> its coordinate system.
    offsets
        Section name -> (row, column) shift when sections are laid side by side.
    sizes
        Section name -> point size (circle diameters, else ``None``: from the spacing).
    images
        The images of the sections' coordinate systems.
    """

    adata: AnnData
    source: SpatialDataSource
    sections: dict[str, str]
    offsets: dict[str, np.ndarray]
    sizes: dict[str, float | None]
    images: list[ImageElement]


def read_spatialdata(path: str | os.PathLike) -> Any:
    """Open a SpatialData ``.zarr`` store (images, labels and points stay lazy)."""
    spatialdata = import_spatialdata()
    path = Path(path)
    if not path.exists():
        raise AnnotatabilityInputError(f"Input {str(path)!r} does not exist; check the path.")
    if not is_spatialdata_store(path):
        raise AnnotatabilityInputError(
            f"{str(path)!r} is not a SpatialData store (no spatialdata attributes and no "
            "images/labels/points/shapes/tables groups at its root)."
        )
    try:
        return spatialdata.read_zarr(path)
    except Exception as err:  # zarr, ome-zarr and pyarrow raise many kinds for a bad store
        raise AnnotatabilityInputError(
            f"Could not read {str(path)!r} as SpatialData: {type(err).__name__}: {err}"
        ) from err


def table_keys(table: AnnData, name: str) -> tuple[list[str], str, str]:
    """The regions, region key and instance key of a table, or a clear error."""
    attrs = table.uns.get("spatialdata_attrs")
    if not isinstance(attrs, dict) or not attrs.get("region"):
        raise AnnotatabilityInputError(
            f"Table {name!r} annotates no element (uns['spatialdata_attrs'] has no 'region'): "
            "link it to the cells' shapes or labels with spatialdata.models.TableModel.parse("
            "table, region=..., region_key=..., instance_key=...)."
        )
    regions = attrs["region"]
    regions = [regions] if isinstance(regions, str) else [str(r) for r in regions]
    region_key, instance_key = attrs.get("region_key"), attrs.get("instance_key")
    for role, key in (("region_key", region_key), ("instance_key", instance_key)):
        if not key or key not in table.obs.columns:
            raise AnnotatabilityInputError(
                f"Table {name!r}: its {role} {key!r} is not an obs column (columns: "
                f"{list(table.obs.columns)}); the table cannot be matched to its cells."
            )
    return regions, region_key, instance_key


def choose_table(sdata: Any, table: str | None) -> str:
    """The table to audit: the one named, or the only one; else the choices named."""
    names = list(sdata.tables.keys())
    if table is not None:
        if table not in names:
            raise AnnotatabilityInputError(
                f"The store has no table {table!r}; its tables: {names or 'none'}."
            )
        return table
    if not names:
        raise AnnotatabilityInputError(
            "The store has no table: the cells' expression and labels live in a table "
            "(an AnnData under tables/), which this store lacks."
        )
    if len(names) > 1:
        raise AnnotatabilityInputError(
            f"The store holds {len(names)} tables ({', '.join(map(repr, names))}); choose one "
            "(Python: table=..., CLI: --table)."
        )
    return names[0]


def element_coordinate_system(sdata: Any, element_name: str, coordinate_system: str | None) -> str:
    """The coordinate system to place an element in: the one asked for, or its only one."""
    from spatialdata.transformations import get_transformation

    systems = list(get_transformation(sdata[element_name], get_all=True).keys())
    if coordinate_system is not None:
        if coordinate_system not in systems:
            raise AnnotatabilityInputError(
                f"Element {element_name!r} has no transformation to coordinate system "
                f"{coordinate_system!r}; its coordinate systems: {systems}."
            )
        return coordinate_system
    if len(systems) == 1:
        return systems[0]
    with_images = [cs for cs in systems if _images_in(sdata, cs)]
    if len(with_images) == 1:
        return with_images[0]
    raise CoordinateSystemChoice(
        f"Element {element_name!r} is placed in {len(systems)} coordinate systems "
        f"({', '.join(map(repr, systems))}); choose one (Python: coordinate_system=..., "
        "CLI: --coordinate-system).",
        likeliest=(with_images or systems)[0],
    )


class CoordinateSystemChoice(AnnotatabilityInputError):
    """An element sits in several coordinate systems and none was chosen.

    ``likeliest`` is the first of them that has an image (else the first): where a
    viewer that cannot ask shows the cells, saying so.
    """

    def __init__(self, message: str, *, likeliest: str) -> None:
        super().__init__(message)
        self.likeliest = likeliest


def _images_in(sdata: Any, coordinate_system: str) -> list[str]:
    from spatialdata.transformations import get_transformation

    return [
        name
        for name, image in sdata.images.items()
        if coordinate_system in get_transformation(image, get_all=True)
    ]


def _affine(element: Any, coordinate_system: str, axes: tuple[str, str]) -> np.ndarray:
    from spatialdata.transformations import get_transformation

    transformation = get_transformation(element, to_coordinate_system=coordinate_system)
    return np.asarray(transformation.to_affine_matrix(input_axes=axes, output_axes=axes))


def _centres(sdata: Any, region: str, coordinate_system: str) -> tuple[pd.DataFrame, float | None]:
    """Instance id -> (x, y) centre in the coordinate system, and circle diameters."""
    from spatialdata import get_centroids
    from spatialdata.models import ShapesModel, get_model

    element = sdata[region]
    centres = get_centroids(element, coordinate_system=coordinate_system).compute()
    diameter = None
    if get_model(element) is ShapesModel and "radius" in element.columns:
        scale = np.sqrt(abs(np.linalg.det(_affine(element, coordinate_system, ("x", "y"))[:2, :2])))
        diameter = float(2 * np.median(element["radius"].to_numpy(dtype=float)) * scale)
    return centres[["x", "y"]], diameter


def spatial_cells(
    sdata: Any,
    *,
    table: str | None = None,
    coordinate_system: str | None = None,
    regions: list[str] | None = None,
    path: str | os.PathLike | None = None,
    read_only: bool = False,
    copy: bool = True,
) -> SpatialCells:
    """The cells of a SpatialData table as an AnnData placed on the store's images.

    Parameters
    ----------
    sdata
        A SpatialData object (read with :func:`read_spatialdata`, or made in memory).
    table
        The table (default: the only one; several are refused with their names).
    coordinate_system
        Where to place every region (default: each region's only coordinate system, or
        the only one of them with an image).
    regions
        Only the rows of these regions (default: every region the table annotates).
    path
        The store ``sdata`` was read from (default: ``sdata.path``); writing back goes
        there.
    read_only
        Refuse writing back (also the case when the store is not writable).
    copy
        Work on a copy of the table (default). ``False`` takes the table itself when
        every row is used (it gets ``obsm["spatial"]`` and the results): for a
        SpatialData object read only for this, it saves a copy of X.

    Returns
    -------
    The cells, where they came from, and the images under them.

    Raises
    ------
    AnnotatabilityInputError
        No table, a table that annotates nothing or an element the store lacks, instance
        ids missing from their element, or a choice left open.
    """
    started = time.perf_counter()
    name = choose_table(sdata, table)
    full = sdata.tables[name]
    annotated, region_key, instance_key = table_keys(full, name)
    if regions is None:
        regions = annotated
    elif set(regions) - set(annotated):
        raise AnnotatabilityInputError(
            f"Table {name!r} does not annotate {sorted(set(regions) - set(annotated))}; "
            f"it annotates {annotated}."
        )
    missing = [r for r in regions if r not in sdata]
    if missing:
        raise AnnotatabilityInputError(
            f"Table {name!r} annotates {missing}, which the store does not hold "
            f"(its elements: {[n for _, n, _ in sdata.gen_spatial_elements()]})."
        )
    row_regions = full.obs[region_key].astype(str).to_numpy()
    sections: dict[str, str] = {}
    sizes: dict[str, float | None] = {}
    xy = np.full((full.n_obs, 2), np.nan)
    for region in regions:
        rows = np.flatnonzero(row_regions == region)
        if rows.size == 0:
            continue
        sections[region] = element_coordinate_system(sdata, region, coordinate_system)
        centres, sizes[region] = _centres(sdata, region, sections[region])
        ids = full.obs[instance_key].to_numpy()[rows]
        found = pd.Index(centres.index).get_indexer(pd.Index(ids))
        if (found < 0).any():
            lost = ids[found < 0]
            raise AnnotatabilityInputError(
                f"Table {name!r}: {lost.size} of {rows.size} rows of region {region!r} name "
                f"instances (obs[{instance_key!r}], e.g. {list(lost[:3])}) that element "
                f"{region!r} does not have (its ids: e.g. {list(centres.index[:3])}); "
                "the table's instance_key does not match the element."
            )
        xy[rows] = centres.to_numpy(dtype=float)[found]
    rows = np.flatnonzero(np.isfinite(xy).all(axis=1))
    if rows.size == 0:
        raise AnnotatabilityInputError(
            f"Table {name!r}: no row belongs to its regions {regions} "
            f"(obs[{region_key!r}] holds {sorted(set(row_regions))[:5]})."
        )
    table_obsm = set(full.obsm)  # before the positions are added (to the table itself
    whole = rows.size == full.n_obs  # when not copied)
    adata = full if whole and not copy else full[rows].copy()
    offsets = _side_by_side(sdata, sections, xy[rows], row_regions[rows])
    shift = np.stack([offsets[r] for r in row_regions[rows]])  # (row, column)
    adata.obsm["spatial"] = xy[rows] + shift[:, ::-1]
    added_obs: tuple[str, ...] = ()
    if len(sections) > 1 and SECTION_KEY not in adata.obs.columns:
        adata.obs[SECTION_KEY] = pd.Categorical(row_regions[rows], categories=list(sections))
        added_obs = (SECTION_KEY,)
    store = Path(path) if path is not None else (Path(sdata.path) if sdata.path else None)
    source = SpatialDataSource(
        path=store,
        table_name=name,
        region_key=region_key,
        instance_key=instance_key,
        rows=rows,
        n_table_rows=full.n_obs,
        added_obsm=tuple(k for k in adata.obsm if k not in table_obsm),
        added_obs=added_obs,
        fingerprint=store_fingerprint(store, name) if store is not None else (),
        read_only=read_only or (store is not None and not os.access(store, os.W_OK)),
    )
    images = _section_images(sdata, sections, offsets)
    logger.info(
        "SpatialData table %r: %d cells in %d section(s), %d image(s), in %.1f s.",
        name,
        adata.n_obs,
        len(sections),
        len(images),
        time.perf_counter() - started,
    )
    return SpatialCells(adata, source, sections, offsets, sizes, images)


def _side_by_side(
    sdata: Any, sections: dict[str, str], xy: np.ndarray, regions: np.ndarray
) -> dict[str, np.ndarray]:
    """(row, column) offsets that put each coordinate system's sections beside the last.

    Sections sharing a coordinate system keep their relative places (one slide); distinct
    coordinate systems (one per sample) are laid left to right (:func:`side_by_side`).
    """
    systems = list(dict.fromkeys(sections.values()))
    boxes = []
    for cs in systems:
        members = np.isin(regions, [r for r, c in sections.items() if c == cs])
        points = xy[members][:, ::-1]  # (row, column)
        low, high = points.min(axis=0), points.max(axis=0)
        for image in _images_in(sdata, cs):
            corners = _image_corners(sdata.images[image], cs)
            low, high = np.minimum(low, corners.min(axis=0)), np.maximum(high, corners.max(axis=0))
        boxes.append((low, high))
    shifts = dict(zip(systems, side_by_side(boxes), strict=True))
    return {region: shifts[cs] for region, cs in sections.items()}


def _image_corners(image: Any, coordinate_system: str) -> np.ndarray:
    """(row, column) of an image's four corners in a coordinate system."""
    levels = _levels(image)
    height, width = levels[0].shape[-2:]
    affine = _affine(image, coordinate_system, ("y", "x"))
    corners = np.array([[0, 0, 1], [height, 0, 1], [0, width, 1], [height, width, 1]], float)
    return (corners @ affine.T)[:, :2]


def _levels(image: Any) -> list:
    """The arrays of an image element, full resolution first."""
    from xarray import DataTree

    if isinstance(image, DataTree):  # multiscale
        levels = []
        for scale in sorted(image.children, key=lambda s: int(str(s).removeprefix("scale"))):
            node = image[scale]
            variable = next(iter(node.data_vars))
            levels.append(node[variable].data)
        return levels
    return [image.data]


def _section_images(
    sdata: Any, sections: dict[str, str], offsets: dict[str, np.ndarray]
) -> list[ImageElement]:
    from spatialdata.models import get_channel_names

    images = []
    for cs in dict.fromkeys(sections.values()):
        offset = next(offsets[r] for r, c in sections.items() if c == cs)
        for name in _images_in(sdata, cs):
            element = sdata.images[name]
            images.append(
                ImageElement(
                    name=name,
                    levels=_levels(element),
                    channels=[str(c) for c in get_channel_names(element)],
                    affine=_affine(element, cs, ("y", "x")),
                    coordinate_system=cs,
                    offset=offset,
                )
            )
    return images
