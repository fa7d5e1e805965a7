"""Curating an annotation: relabel, accept suggestions, keep, undo and redo, with provenance.

Edits go to a curated column next to the original (``obs[f"{label_key}_curated"]``),
never over it; ``obs[f"{label_key}_reviewed"]`` marks the cells a person has looked at.
Every edit is logged one row per cell (cell, old label, new label, how, time, and the
cell's confidence and flag at the time) and the log is kept in
``uns["annotatability_edits"]`` as a table, so a curation can be reopened, exported and
replayed elsewhere (:func:`apply_edits`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core import keys
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import HARD

logger = logging.getLogger(__name__)

EDITS_KEY = "annotatability_edits"
MANUAL, SUGGESTION, BULK, KEEP, UNDO = "manual", "suggestion", "bulk", "keep", "undo"
LOG_COLUMNS = ("cell_id", "old", "new", "how", "time", "conf", "flag")


def curated_key(label_key: str) -> str:
    """``obs`` column of the curated annotation of ``label_key``."""
    return f"{label_key}_curated"


def reviewed_key(label_key: str) -> str:
    """``obs`` column marking the cells reviewed during curation."""
    return f"{label_key}_reviewed"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _as_text(values) -> np.ndarray:
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), None).to_numpy(dtype=object)


@dataclass(frozen=True)
class Edit:
    """One user action over one or more cells (what undo and redo replay).

    Attributes
    ----------
    positions
        obs positions of the cells.
    old, new
        Curated labels before and after, one per cell (``None``: missing).
    reviewed_before
        Whether each cell was marked reviewed before.
    how
        ``"manual"``, ``"suggestion"``, ``"bulk"`` or ``"keep"``.
    time
        When (UTC, ISO 8601).
    """

    positions: np.ndarray
    old: np.ndarray
    new: np.ndarray
    reviewed_before: np.ndarray
    how: str
    time: str

    @property
    def n_changed(self) -> int:
        """Cells whose label this edit changed."""
        return int(sum(a != b for a, b in zip(self.old, self.new, strict=True)))


class Curation:
    """The curated column of one annotation, with its edit log, undo and redo.

    Creating it adds ``obs[f"{label_key}_curated"]`` (a copy of the annotation) and
    ``obs[f"{label_key}_reviewed"]`` (all ``False``) unless they exist, and reads an
    existing edit log from ``uns`` (so a saved curation continues where it stopped).

    Parameters
    ----------
    adata
        The AnnData; curated labels and the log are written into it at every edit.
    label_key
        The annotation being curated (a categorical or text obs column).
    """

    def __init__(self, adata: AnnData, label_key: str) -> None:
        if label_key not in adata.obs.columns:
            raise AnnotatabilityInputError(
                f"Label key {label_key!r} not found in adata.obs; columns: "
                f"{list(adata.obs.columns)}."
            )
        column = adata.obs[label_key]
        if pd.api.types.is_float_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise AnnotatabilityInputError(
                f"adata.obs[{label_key!r}] holds {column.dtype} values, not cell-type labels; "
                "curate a categorical or text column."
            )
        keys.require_unique_cell_ids(adata)
        keys.adopt_unkeyed_audit(adata)
        self.adata = adata
        self.label_key = label_key
        self.curated = curated_key(label_key)
        self.reviewed = reviewed_key(label_key)
        obs = adata.obs
        if self.curated not in obs.columns:
            original = column.astype(object)
            obs[self.curated] = pd.Categorical(
                original.where(original.notna(), None), categories=self._classes(column)
            )
        if self.reviewed not in obs.columns:
            obs[self.reviewed] = np.zeros(adata.n_obs, dtype=bool)
        self._log = self._read_log()
        self._done: list[Edit] = []
        self._undone: list[Edit] = []

    @staticmethod
    def _classes(column: pd.Series) -> list[str]:
        if isinstance(column.dtype, pd.CategoricalDtype):
            return [str(c) for c in column.cat.categories]
        return sorted({str(v) for v in column.dropna().unique()})

    def _read_log(self) -> pd.DataFrame:
        stored = self.adata.uns.get(EDITS_KEY)
        if isinstance(stored, pd.DataFrame) and set(LOG_COLUMNS) <= set(stored.columns):
            return stored[[*LOG_COLUMNS, "label_key"]].reset_index(drop=True)
        return pd.DataFrame(columns=[*LOG_COLUMNS, "label_key"])

    # --- state ---------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """Classes of the curated column (the original ones plus any added)."""
        return [str(c) for c in self.adata.obs[self.curated].cat.categories]

    def labels(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Curated labels (at ``positions``) as objects, ``None`` where missing."""
        values = self.adata.obs[self.curated].astype(object).to_numpy()
        return _as_text(values if positions is None else values[positions])

    @property
    def log(self) -> pd.DataFrame:
        """The edit log: one row per cell per edit (undos are logged as ``how="undo"``)."""
        return self._log.copy()

    @property
    def can_undo(self) -> bool:
        """Whether there is an edit of this session to undo."""
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone edit to redo."""
        return bool(self._undone)

    def n_reviewed(self, positions: np.ndarray | None = None) -> int:
        """How many cells (of ``positions``) are marked reviewed."""
        reviewed = self.adata.obs[self.reviewed].to_numpy(dtype=bool)
        return int(reviewed.sum() if positions is None else reviewed[positions].sum())

    # --- edits ---------------------------------------------------------------------
    def set_labels(self, positions, labels, *, how: str = MANUAL) -> Edit:
        """Give each cell at ``positions`` its own curated label (marked reviewed).

        Every label must already be a class (see :meth:`relabel` to add one).
        """
        positions = np.asarray(positions, dtype=np.int64)
        return self._apply(positions, np.asarray(labels, dtype=object), how, mark_reviewed=True)

    def relabel(self, positions, label: str, *, how: str = MANUAL) -> Edit:
        """Give the cells at obs ``positions`` the curated label ``label`` (new or existing)."""
        positions = self._positions(positions)
        label = str(label).strip()
        if not label:
            raise AnnotatabilityInputError("The new label is empty; type a class name.")
        self._add_class(label)
        new = np.full(positions.size, label, dtype=object)
        return self._apply(positions, new, how, mark_reviewed=True)

    def accept_suggestions(self, positions=None) -> Edit:
        """Apply the suggested label of the cells (default: every Hard-to-learn cell).

        Cells without a suggestion are left out; ``how`` is ``"suggestion"`` for a
        selection and ``"bulk"`` for all Hard-to-learn cells at once.
        """
        key = keys.suggestion_key(self.label_key)
        obs = self.adata.obs
        if key not in obs.columns:
            raise AnnotatabilityInputError(
                f"No suggestions in adata.obs[{key!r}]; train with 'suggest corrections' first."
            )
        suggested = _as_text(obs[key].astype(object).to_numpy())
        if positions is None:
            flag = obs.get(keys.flag_key(self.label_key))
            hard = np.zeros(self.adata.n_obs, bool) if flag is None else (flag == HARD).to_numpy()
            positions, how = np.flatnonzero(hard), BULK
        else:
            positions, how = self._positions(positions), SUGGESTION
        positions = positions[[suggested[p] is not None for p in positions]]
        if positions.size == 0:
            raise AnnotatabilityInputError("None of these cells has a suggested label.")
        for label in set(suggested[positions]):
            self._add_class(label)
        return self._apply(positions, suggested[positions], how, mark_reviewed=True)

    def keep(self, positions) -> Edit:
        """Mark the cells reviewed and keep their curated label."""
        positions = self._positions(positions)
        return self._apply(positions, self.labels(positions), KEEP, mark_reviewed=True)

    def undo(self) -> Edit | None:
        """Undo the last edit of this session (labels and reviewed marks)."""
        if not self._done:
            return None
        edit = self._done.pop()
        self._set(edit.positions, edit.old, edit.reviewed_before)
        self._append_log(edit.positions, edit.new, edit.old, UNDO)
        self._undone.append(edit)
        return edit

    def redo(self) -> Edit | None:
        """Redo the last undone edit."""
        if not self._undone:
            return None
        edit = self._undone.pop()
        self._set(edit.positions, edit.new, np.ones(edit.positions.size, dtype=bool))
        self._append_log(edit.positions, edit.old, edit.new, edit.how)
        self._done.append(edit)
        return edit

    # --- internals -----------------------------------------------------------------
    def _positions(self, positions) -> np.ndarray:
        positions = np.unique(np.asarray(positions, dtype=np.int64).ravel())
        if positions.size == 0:
            raise AnnotatabilityInputError("No cells selected: select cells first.")
        if positions[0] < 0 or positions[-1] >= self.adata.n_obs:
            raise AnnotatabilityInputError(
                f"Cell positions must lie in 0..{self.adata.n_obs - 1}; got {positions[[0, -1]]}."
            )
        return positions

    def _add_class(self, label: str) -> None:
        column = self.adata.obs[self.curated]
        if label not in column.cat.categories:
            self.adata.obs[self.curated] = column.cat.add_categories([label])
            logger.info("New class %r in %s.", label, self.curated)

    def _apply(self, positions: np.ndarray, new: np.ndarray, how: str, *, mark_reviewed: bool):
        old = self.labels(positions)
        reviewed_before = self.adata.obs[self.reviewed].to_numpy(dtype=bool)[positions].copy()
        edit = Edit(
            positions=positions,
            old=old,
            new=_as_text(new),
            reviewed_before=reviewed_before,
            how=how,
            time=_now(),
        )
        self._set(positions, edit.new, np.ones(positions.size, bool) if mark_reviewed else None)
        self._append_log(positions, edit.old, edit.new, how, edit.time)
        self._done.append(edit)
        self._undone.clear()
        return edit

    def _set(self, positions: np.ndarray, labels: np.ndarray, reviewed: np.ndarray | None) -> None:
        obs = self.adata.obs
        column = obs[self.curated]
        codes = column.cat.codes.to_numpy().copy()
        lookup = {c: i for i, c in enumerate(column.cat.categories)}
        codes[positions] = [-1 if v is None else lookup[v] for v in labels]
        obs[self.curated] = pd.Categorical.from_codes(codes, categories=column.cat.categories)
        if reviewed is not None:
            flags = obs[self.reviewed].to_numpy(dtype=bool).copy()
            flags[positions] = reviewed
            obs[self.reviewed] = flags

    def _append_log(self, positions, old, new, how: str, time: str | None = None) -> None:
        obs = self.adata.obs
        conf_column = keys.conf_key(self.label_key)
        conf = (
            obs[conf_column].to_numpy(dtype=float)[positions]
            if conf_column in obs.columns
            else np.full(positions.size, np.nan)
        )
        flag_column = keys.flag_key(self.label_key)
        flag = (
            _as_text(obs[flag_column].astype(object).to_numpy()[positions])
            if flag_column in obs.columns
            else np.full(positions.size, None, dtype=object)
        )
        rows = pd.DataFrame(
            {
                "cell_id": self.adata.obs_names[positions].astype(str),
                "old": pd.Series(old, dtype=object).fillna("").astype(str).to_numpy(),
                "new": pd.Series(new, dtype=object).fillna("").astype(str).to_numpy(),
                "how": how,
                "time": time or _now(),
                "conf": conf,
                "flag": pd.Series(flag, dtype=object).fillna("").astype(str).to_numpy(),
                "label_key": self.label_key,
            }
        )
        self._log = pd.concat([self._log, rows], ignore_index=True) if len(self._log) else rows
        self.adata.uns[EDITS_KEY] = self._log
