"""Curation without napari: start one, export it as a table, replay a table of edits."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import pandas as pd
from anndata import AnnData

from napari_annotatability.core import anndata_io as io
from napari_annotatability.core.curation import Curation, Edit, curated_key, reviewed_key
from napari_annotatability.core.edit_tables import apply_edits as _apply_edits
from napari_annotatability.core.edit_tables import edits_label_column, export_table
from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)


#: Field separator of edits tables by file suffix.
TABLE_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def curate(adata: AnnData, label_key: str) -> Curation:
    """Start (or continue) curating ``adata.obs[label_key]``.

    Adds ``obs[f"{label_key}_curated"]`` (a copy of the annotation) and
    ``obs[f"{label_key}_reviewed"]`` unless they exist, and continues an edit log found in
    ``uns["annotatability_edits"]``.

    Parameters
    ----------
    adata
        The data; edits are written into it at once.
    label_key
        The annotation to curate (a categorical or text obs column).

    Returns
    -------
    A :class:`~napari_annotatability.core.curation.Curation`: ``relabel(positions,
    label)``, ``accept_suggestions(positions=None)``, ``keep(positions)``, ``undo()``,
    ``redo()``, ``log``.
    """
    return Curation(adata, label_key)


def table_separator(path: str | os.PathLike, sep: str | None = None) -> str:
    """The field separator of a table file: ``sep`` if given, else by suffix."""
    if sep is not None:
        return sep
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SEPARATORS:
        raise AnnotatabilityInputError(
            f"Cannot tell the table format of {str(path)!r} from its suffix "
            f"{suffix or '(none)'!r}; name it *.csv (comma) or *.tsv / *.txt (tab)."
        )
    return TABLE_SEPARATORS[suffix]


def export_curation(
    adata: AnnData,
    label_key: str,
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the curation as a CSV or TSV table, one row per cell, atomically.

    Columns: ``cell_id``, ``original``, ``curated``, ``mislabel_score``, ``conf``, ``var``,
    ``flag``, ``suggestion``, ``reviewed`` (empty where the data holds no value yet). The table
    is what :func:`apply_edits` (CLI: ``apply-edits``) replays on another copy of the data.

    Parameters
    ----------
    adata
        The data, curated or not (then ``curated`` equals ``original``).
    label_key
        The annotation.
    path
        Destination; ``.csv`` gives commas, ``.tsv`` and ``.txt`` tabs.
    sep
        Field separator, for other suffixes.
    overwrite
        Replace an existing file.

    Returns
    -------
    The destination path.
    """
    separator = table_separator(path, sep)
    table = export_table(adata, label_key)
    return io.write_csv_atomic(table, path, overwrite=overwrite, sep=separator)


def read_edits(path: str | os.PathLike) -> pd.DataFrame:
    """Read an edits table (CSV or TSV by suffix), every column as text.

    ``cell_id`` and the labels stay text exactly as written (``"01"``, ``"NA"``); only
    empty fields are missing. ``mislabel_score``, ``conf`` and ``var`` become numbers and
    ``reviewed`` booleans when all their values parse.

    Parameters
    ----------
    path
        A ``.csv`` (comma) or ``.tsv`` / ``.txt`` (tab) file with a header row that
        includes ``cell_id`` (e.g. from :func:`export_curation`).

    Returns
    -------
    The table.

    Raises
    ------
    AnnotatabilityInputError
        For a missing, empty or unparseable file, or one without a ``cell_id`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotatabilityInputError(
            f"Edits file {str(path)!r} "
            + ("is a folder" if path.is_dir() else "does not exist")
            + "; give the CSV/TSV table written by export-curation."
        )
    sep = table_separator(path)
    kind = "CSV" if sep == "," else "TSV"
    try:
        table = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",  # also files saved by spreadsheet programs
        )
    except pd.errors.EmptyDataError as err:
        raise AnnotatabilityInputError(
            f"Edits file {str(path)!r} is empty; it needs a header row (cell_id, curated, "
            "...) and one row per edited cell."
        ) from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise AnnotatabilityInputError(
            f"Could not read {str(path)!r} as a {kind} table: {type(err).__name__}: "
            f"{str(err).strip()}"
        ) from err
    table.columns = [str(c).strip() for c in table.columns]
    if "cell_id" not in table.columns:
        other = "\t" if sep == "," else ","
        hint = ""
        if len(table.columns) == 1 and other in table.columns[0]:
            hint = " It looks " + ("tab" if other == "\t" else "comma") + "-separated: "
            hint += "name it *.tsv." if other == "\t" else "name it *.csv."
        raise AnnotatabilityInputError(
            f"Edits file {str(path)!r} has no 'cell_id' column; columns: "
            f"{list(table.columns)}.{hint}"
        )
    if table.empty:
        raise AnnotatabilityInputError(
            f"Edits file {str(path)!r} has a header but no rows: nothing to apply."
        )
    for column in ("mislabel_score", "conf", "var"):
        if column in table.columns:
            with contextlib.suppress(ValueError, TypeError):
                table[column] = table[column].astype(float)  # exact, unlike the C parser
    if "reviewed" in table.columns:
        parsed = _parse_bool(table["reviewed"])
        if parsed is not None:
            table["reviewed"] = parsed
    return table


def _parse_bool(values: pd.Series) -> pd.Series | None:
    """Text such as True/False, 1/0, yes/no as booleans (missing: False); else ``None``."""
    if pd.api.types.is_bool_dtype(values):
        return values
    text = values.fillna("false").astype(str).str.strip().str.lower()
    if not text.isin(_TRUE | _FALSE).all():
        return None
    return text.isin(_TRUE)


def _prepare_edits(edits: pd.DataFrame, label_key: str, label_column: str | None) -> pd.DataFrame:
    """Drop what there is nothing to replay; refuse a column of measurements as labels."""
    column = edits_label_column(list(edits.columns), label_key, label_column)
    labels = edits[column]
    filled = labels.dropna()
    numbers = pd.to_numeric(filled.astype(str), errors="coerce") if filled.size else filled
    if pd.api.types.is_float_dtype(labels) or (
        filled.size and numbers.notna().all() and (numbers != numbers.round()).any()
    ):
        raise AnnotatabilityInputError(
            f"Column {column!r} of the edits holds decimal numbers (e.g. "
            f"{str(filled.iloc[0])!r}), not labels; name the label column with label_column "
            "(CLI: --label-column)."
        )
    edits = edits.assign(cell_id=edits["cell_id"].astype(str))
    if "original" in edits.columns:
        # cells without a label that were left without one: nothing to replay
        unlabelled = labels.isna() & edits["original"].isna()
        if unlabelled.any():
            logger.info("Skipping %d cells left without a label.", int(unlabelled.sum()))
            edits = edits[~unlabelled.to_numpy()]
    duplicated = edits["cell_id"].duplicated(keep="last")
    if duplicated.any():
        logger.info(
            "%d cells appear more than once in the edits; their last row counts.",
            int(duplicated.sum()),
        )
        edits = edits[~duplicated.to_numpy()]
    return edits


def apply_edits(
    adata: AnnData,
    label_key: str,
    edits: pd.DataFrame | str | os.PathLike,
    *,
    label_column: str | None = None,
    allow_new_labels: bool = False,
) -> Edit:
    """Replay a curation (``cell_id`` + curated label) on ``adata``, e.g. the full data.

    The curated labels go to ``obs[f"{label_key}_curated"]`` and are logged in
    ``uns["annotatability_edits"]``; the annotation itself is never changed. Cells whose
    label changes, and cells marked reviewed in a ``reviewed`` column, are marked
    reviewed. Everything is checked first; on bad input ``adata`` is left as it was.

    Parameters
    ----------
    adata
        The data to curate.
    label_key
        The annotation the edits were made on.
    edits
        A table, or the path of a CSV/TSV file (:func:`read_edits`), with ``cell_id``
        and the curated label; the exported table of :func:`export_curation` fits.
        Only the edited cells are needed. A cell listed twice takes its last row; cells
        without a label in both ``original`` and the curated column are skipped.
    label_column
        The column of the curated labels (default: ``curated``, else
        ``f"{label_key}_curated"``, else ``new``).
    allow_new_labels
        Accept labels that are not classes of the annotation (else an error names them).

    Returns
    -------
    The label edit applied (:class:`~napari_annotatability.core.curation.Edit`; its
    ``positions`` are the cells whose curated label changed).

    Raises
    ------
    AnnotatabilityInputError
        For cell ids not in ``adata``, empty labels, labels that are not classes (unless
        ``allow_new_labels``), a label column of decimal numbers, a missing column, or a
        label key that is missing or not a label column.
    """
    table = edits if isinstance(edits, pd.DataFrame) else read_edits(edits)
    table = _prepare_edits(table, label_key, label_column)
    obs = adata.obs
    added = [k for k in (curated_key(label_key), reviewed_key(label_key)) if k not in obs]
    try:
        edit = _apply_edits(
            adata,
            label_key,
            table,
            label_column=label_column,
            allow_new_labels=allow_new_labels,
        )
    except AnnotatabilityInputError:
        adata.obs = adata.obs.drop(columns=[k for k in added if k in adata.obs.columns])
        raise
    if "reviewed" in table.columns:
        reviewed = _parse_bool(table["reviewed"])
        if reviewed is None:
            logger.warning("The 'reviewed' column is not True/False; reviewed marks not replayed.")
        else:
            curation = Curation(adata, label_key)
            positions = adata.obs_names.get_indexer(
                table["cell_id"].to_numpy()[reviewed.to_numpy()]
            )
            marked = adata.obs[curation.reviewed].to_numpy(dtype=bool)
            positions = positions[~marked[positions]]
            if positions.size:
                curation.keep(positions)
    logger.info(
        "Applied %d edits to adata.obs[%r]: %d cells changed label.",
        len(table),
        curated_key(label_key),
        edit.n_changed,
    )
    return edit
