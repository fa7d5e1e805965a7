"""Write an audit and its curation back into the table of a SpatialData store.

Only the table element is replaced, atomically: the merged table is written as a new
element beside it (``tables/<name>_annotatability_tmp``), checked, then swapped in by
renaming folders (the old one aside, the new one in, the old one deleted), and the store's
consolidated metadata rewritten. Images, labels, points, shapes and other tables are not
touched. Writing is refused to a store opened read-only, or whose table changed on disk
since it was read.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.spatialdata_read import (
    SpatialDataSource,
    import_spatialdata,
    store_fingerprint,
)

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


def merged_table(table: AnnData, adata: AnnData, source: SpatialDataSource) -> AnnData:
    """The table with the obs columns, uns entries and obsm arrays of ``adata`` put in.

    ``adata`` holds the rows ``source.rows`` of the table; its obs columns go to those
    rows (other rows get missing values, :func:`table_columns`), its uns entries are
    added or replaced (the table's ``spatialdata_attrs`` stay), its obsm arrays are padded
    with NaN to every row. The table's X, layers, var and other columns are kept.
    """
    merged = table.copy()
    for column, values in table_columns(adata, source).items():
        merged.obs[column] = values
    for key, value in adata.uns.items():
        if key != "spatialdata_attrs":
            merged.uns[key] = value
    for key, value in adata.obsm.items():
        if key in source.added_obsm:
            continue
        array = np.asarray(value)
        full = np.full((table.n_obs, *array.shape[1:]), np.nan)
        full[source.rows] = array
        merged.obsm[key] = full
    return merged


def _spread(values: pd.Series, rows: np.ndarray, n: int) -> np.ndarray | pd.Categorical:
    """``values`` at ``rows`` of ``n`` rows, missing elsewhere (False for booleans)."""
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
    return full


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
    spatialdata = import_spatialdata()
    path = check_writable(source)
    name = source.table_name
    tables = path / "tables"
    temporary = f"{name}{TEMPORARY_SUFFIX}"
    with warnings.catch_warnings():
        # only the tables are read: spatialdata notes that their regions are not loaded
        warnings.filterwarnings("ignore", message="The table is annotating", category=UserWarning)
        sdata = spatialdata.read_zarr(path, selection=("tables",))
        if name not in sdata.tables:
            raise AnnotatabilityInputError(f"The store {str(path)!r} no longer has table {name!r}.")
        merged = merged_table(sdata.tables[name], adata, source)
        if (tables / temporary).exists():  # left by an interrupted write, never the table
            shutil.rmtree(tables / temporary)
        sdata.tables[temporary] = merged
        try:
            sdata.write_element(temporary)
            _swap(tables / temporary, tables / name)
        except BaseException:
            shutil.rmtree(tables / temporary, ignore_errors=True)
            raise
        finally:
            del sdata.tables[temporary]
        sdata.write_consolidated_metadata()
    source.fingerprint = store_fingerprint(path, name)
    logger.info("Wrote table %r of %s (%d rows).", name, path, merged.n_obs)
    return path


def _swap(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target``: the old one renamed aside, then deleted."""
    aside_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    aside = aside_dir / target.name
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        aside_dir.rmdir()
        raise
    shutil.rmtree(aside_dir, ignore_errors=True)


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
