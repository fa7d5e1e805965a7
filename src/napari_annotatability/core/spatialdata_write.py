"""Write an audit and its curation back into the table of a SpatialData store.

Only the table element is replaced, atomically: a copy of its folder
(``tables/<name>_annotatability_tmp``) gets the new obs, uns and obsm, then is swapped in
by renaming folders (the old one aside, the new one in, the old one deleted), and the
store's consolidated metadata rewritten. Images, labels, points, shapes and other tables are not
touched. Writing is refused to a store opened read-only, or whose table changed on disk
since it was read.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core.anndata_io import move_into_place
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.spatialdata_read import SpatialDataSource, store_fingerprint

logger = logging.getLogger(__name__)

#: Suffix of the temporary table element written before the swap.
TEMPORARY_SUFFIX = "_annotatability_tmp"


def table_columns(adata: AnnData, source: SpatialDataSource) -> dict[str, object]:
    """The obs columns of ``adata`` spread to every row of its table (missing elsewhere).

    Leaves out the columns made when reading (the section) and the table's region and
    instance keys.
    """
    if adata.n_obs != len(source.rows):
        raise AnnotatabilityInputError(
            f"The data has {adata.n_obs} cells but came from {len(source.rows)} rows of "
            f"{source.describe()}; cells cannot be added or removed before writing back."
        )
    whole = source.n_table_rows == adata.n_obs and np.array_equal(
        source.rows, np.arange(adata.n_obs)
    )
    skip = {*source.added_obs, source.region_key, source.instance_key}
    columns = {}
    for column in adata.obs.columns:
        if column in skip:
            continue
        values = adata.obs[column]
        if not whole:
            columns[column] = _spread(values, source.rows, source.n_table_rows)
        elif isinstance(values.dtype, pd.CategoricalDtype):
            columns[column] = values.values  # the Categorical, categories kept
        else:
            columns[column] = values.to_numpy()
    return columns


def _spread(values: pd.Series, rows: np.ndarray, n: int) -> np.ndarray | pd.Categorical:
    """``values`` at ``rows`` of ``n`` rows, missing elsewhere (False for booleans).

    Text becomes categorical, the one way every anndata version stores missing text.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.full(n, -1, dtype=values.cat.codes.dtype)
        codes[rows] = values.cat.codes.to_numpy()
        return pd.Categorical.from_codes(codes, dtype=values.dtype)
    if pd.api.types.is_bool_dtype(values):
        full = np.zeros(n, dtype=bool)
        full[rows] = values.to_numpy(dtype=bool)
        return full
    if pd.api.types.is_numeric_dtype(values):
        full = np.full(n, np.nan)
        full[rows] = values.to_numpy(dtype=float)
        return full
    full = np.full(n, None, dtype=object)
    full[rows] = values.astype(object).to_numpy()
    return pd.Categorical(full)  # text with missing values: stored as categories, -1 missing


def check_writable(source: SpatialDataSource) -> Path:
    """The store to write into, or a clear refusal (in memory, read-only, changed since)."""
    if source.path is None:
        raise AnnotatabilityInputError(
            "These cells come from a SpatialData object that is not saved to a store; write "
            "it with sdata.write(path) first, or save the AnnData on its own."
        )
    path = source.path
    if not path.is_dir():
        raise AnnotatabilityInputError(f"The store {str(path)!r} no longer exists.")
    if source.read_only or not os.access(path / "tables", os.W_OK):
        raise AnnotatabilityInputError(
            f"The store {str(path)!r} was opened read-only (or its tables folder is not "
            "writable); save the curated data to another store or file."
        )
    if source.fingerprint and store_fingerprint(path, source.table_name) != source.fingerprint:
        raise AnnotatabilityInputError(
            f"Table {source.table_name!r} of {str(path)!r} changed on disk since it was read; "
            "writing would lose those changes. Open the store again and redo the work, or save "
            "to another store."
        )
    return path


def write_table_back(adata: AnnData, source: SpatialDataSource) -> Path:
    """Replace the table of ``source`` in its store with ``adata``'s results merged in.

    The table's folder is copied to ``tables/<name>_annotatability_tmp``; its obs gets the
    obs columns of ``adata`` (:func:`table_columns`), its uns the uns entries of ``adata``
    (the table's ``spatialdata_attrs`` stay), its obsm the obsm arrays of ``adata``
    (padded with NaN to every row, except the positions made on reading); then the copy is
    swapped in and the store's consolidated metadata rewritten. X, layers and var are
    copied as files, never loaded.

    Parameters
    ----------
    adata
        The cells (rows ``source.rows`` of the table) with their audit, curated labels and
        edit log.
    source
        Where they came from (:attr:`SpatialCells.source`); its fingerprint is renewed, so
        the same cells can be written again later.

    Returns
    -------
    The store's path.
    """
    import zarr

    path = check_writable(source)
    name = source.table_name
    target = path / "tables" / name
    if not target.is_dir():
        raise AnnotatabilityInputError(f"The store {str(path)!r} no longer has table {name!r}.")
    columns = table_columns(adata, source)
    temporary = target.with_name(f"{name}{TEMPORARY_SUFFIX}")
    if temporary.exists():  # left by an interrupted write, never the table
        shutil.rmtree(temporary)
    try:
        shutil.copytree(target, temporary)
        group = zarr.open_group(temporary, mode="r+", use_consolidated=False)
        _update_table(group, adata, source, columns)
        move_into_place(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _consolidate(path)
    source.fingerprint = store_fingerprint(path, name)
    logger.info("Wrote %d columns into table %r of %s.", len(columns), name, path)
    return path


def _update_table(group, adata: AnnData, source: SpatialDataSource, columns: dict) -> None:
    """Write the results of ``adata`` into a table's zarr group (obs, uns, obsm)."""
    from anndata.io import read_elem, write_elem

    obs = read_elem(group["obs"])
    for column, values in columns.items():
        obs[column] = values
    write_elem(group, "obs", obs)
    uns = read_elem(group["uns"]) if "uns" in group else {}
    uns.update({k: v for k, v in adata.uns.items() if k != "spatialdata_attrs"})
    write_elem(group, "uns", uns)
    for key, value in adata.obsm.items():
        if key in source.added_obsm:
            continue
        array = np.asarray(value)
        full = np.full((source.n_table_rows, *array.shape[1:]), np.nan)
        full[source.rows] = array
        write_elem(group["obsm"], key, full)


def _consolidate(path: Path) -> None:
    """Rewrite the store's consolidated metadata, as spatialdata does after a write."""
    import zarr

    root = zarr.open_group(path, mode="r+", use_consolidated=False)
    if (
        getattr(root.metadata, "consolidated_metadata", None) is None
        and not (path / ".zmetadata").exists()
    ):
        return  # a store without consolidated metadata stays without
    with warnings.catch_warnings():
        # zarr does not know the parquet files of points and shapes; spatialdata ignores this
        warnings.filterwarnings("ignore", category=zarr.errors.ZarrUserWarning)
        zarr.consolidate_metadata(root.store)


def mirror_into_table(adata: AnnData, source: SpatialDataSource) -> list[str]:
    """Put the results of ``adata`` into the in-memory table of ``source.sdata``.

    The table object is updated in place (its obs columns and uns entries), so whatever
    holds it (napari-spatialdata's widgets) sees the audit and the curated labels.
    Nothing is written to disk. Returns the obs columns written.
    """
    if source.sdata is None:
        return []
    table = source.sdata.tables[source.table_name]
    columns = table_columns(adata, source)
    for column, values in columns.items():
        table.obs[column] = values
    for key, value in adata.uns.items():
        if key != "spatialdata_attrs":
            table.uns[key] = value
    return list(columns)
