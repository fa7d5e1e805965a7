"""Curation as a table: export one row per cell, and replay a table of edits.

For people who keep labels outside AnnData, and for curating a laptop-sized copy and
applying the edits to the full data on a server.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core import keys
from napari_annotatability.core.curation import Curation, Edit, curated_key, reviewed_key
from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)

EXPORT_COLUMNS = (
    "cell_id",
    "original",
    "curated",
    "mislabel_score",
    "conf",
    "var",
    "flag",
    "suggestion",
    "reviewed",
)


def export_table(adata: AnnData, label_key: str) -> pd.DataFrame:
    """The curation as one row per cell, for people who keep labels outside AnnData.

    Columns: cell_id, original, curated, mislabel_score, conf, var, flag, suggestion,
    reviewed (values the file does not hold yet are empty).
    """
    obs = adata.obs
    if label_key not in obs.columns:
        raise AnnotatabilityInputError(f"Label key {label_key!r} not found in adata.obs.")
    keys.adopt_unkeyed_audit(adata)
    curated = curated_key(label_key)

    def column(key: str, fill) -> np.ndarray:
        if key not in obs.columns:
            return np.full(adata.n_obs, fill, dtype=object)
        return obs[key].to_numpy()

    original = obs[label_key]
    table = pd.DataFrame(
        {
            "cell_id": adata.obs_names.astype(str),
            "original": original.to_numpy(),
            "curated": column(curated, None) if curated in obs.columns else original.to_numpy(),
            "mislabel_score": column(keys.mislabel_key(label_key), np.nan),
            "conf": column(keys.conf_key(label_key), np.nan),
            "var": column(keys.var_key(label_key), np.nan),
            "flag": column(keys.flag_key(label_key), None),
            "suggestion": column(keys.suggestion_key(label_key), None),
            "reviewed": column(reviewed_key(label_key), False).astype(bool),
        }
    )
    return table[list(EXPORT_COLUMNS)]


def edits_label_column(columns: list[str], label_key: str, label_column: str | None) -> str:
    """The column of an edits table that holds the curated labels.

    ``label_column`` when given; else the first of ``curated``,
    ``f"{label_key}_curated"``, ``new`` and ``label_key`` present; else, in a table of
    ``cell_id`` and one other column, that column. A clear error otherwise, naming the
    option that chooses it.
    """
    if "cell_id" not in columns:
        raise AnnotatabilityInputError(
            f"The edits table has no 'cell_id' column; columns: {columns}."
        )
    if label_column is not None:
        if label_column not in columns:
            raise AnnotatabilityInputError(
                f"Column {label_column!r} not in the edits table; columns: {columns}."
            )
        return label_column
    candidates = ("curated", curated_key(label_key), "new", label_key)
    found = next((c for c in candidates if c in columns), None)
    if found is not None:
        return found
    others = [c for c in columns if c != "cell_id"]
    if len(others) == 1:
        return others[0]
    raise AnnotatabilityInputError(
        f"Cannot tell which column of the edits table holds the curated labels: none of "
        f"{list(candidates)} is there; columns: {columns}. Name it with "
        "label_column=... (CLI: --label-column COLUMN)."
    )


def apply_edits(
    adata: AnnData,
    label_key: str,
    edits: pd.DataFrame,
    *,
    label_column: str | None = None,
    allow_new_labels: bool = False,
) -> Edit:
    """Replay an exported curation (``cell_id`` + curated label) on ``adata``.

    Everything is checked before anything changes: unknown cell ids, missing or empty
    labels, and (unless ``allow_new_labels``) labels that are not classes of the
    annotation raise :class:`AnnotatabilityInputError` naming them.

    Parameters
    ----------
    adata
        The data to curate (e.g. the full data on a server).
    label_key
        The annotation the edits were made on.
    edits
        A table with ``cell_id`` and the curated label (``curated`` by default).
    label_column
        The column of ``edits`` holding the curated label (default: see
        :func:`edits_label_column`).
    allow_new_labels
        Accept labels that are not yet classes of the annotation.

    Returns
    -------
    The edit applied (cells whose curated label differs from the current one).
    """
    label_column = edits_label_column(list(edits.columns), label_key, label_column)
    ids = edits["cell_id"].astype(str).to_numpy()
    positions = adata.obs_names.get_indexer(ids)
    unknown = ids[positions < 0]
    if unknown.size:
        raise AnnotatabilityInputError(
            f"{unknown.size} cell ids of the edits are not in the data (e.g. "
            f"{list(unknown[:5])}); are they from another file?"
        )
    labels = edits[label_column]
    if labels.isna().any() or (labels.astype(str).str.strip() == "").any():
        raise AnnotatabilityInputError(
            f"{int(labels.isna().sum() + (labels.astype(str).str.strip() == '').sum())} rows "
            f"of {label_column!r} are empty; give every cell a label."
        )
    curation = Curation(adata, label_key)
    labels = labels.astype(str).str.strip().to_numpy(dtype=object)
    new_classes = sorted(set(labels) - set(curation.classes))
    if new_classes and not allow_new_labels:
        raise AnnotatabilityInputError(
            f"Labels {new_classes} are not classes of adata.obs[{label_key!r}] "
            f"({curation.classes}); check for typos or allow new labels (--allow-new-labels)."
        )
    for label in new_classes:
        curation._add_class(label)
    changed = curation.labels(positions) != labels
    if not changed.any():
        logger.info("All %d edited cells already carry their curated label.", len(ids))
    return curation.set_labels(positions[changed], labels[changed])
