"""Per class: how many labels look wrong, and what they should be.

:func:`class_report` summarises an audit by annotated class: its cells, how many are
flagged Hard-to-learn, the estimated number of wrong labels (the label evidence's
mislabel scores, scaled so that the classes add up to the audit's own estimate), and
the most common suggested correction. :func:`suggestion_matrix` crosses the given labels
with the suggested ones; :func:`cells_given_suggested` lists the cells of one entry (what
a curator selects by clicking it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns of :func:`class_report`.
REPORT_COLUMNS = (
    "cells",
    "flagged",
    "flagged_pct",
    "estimated_wrong",
    "estimated_error_rate",
    "top_suggestion",
    "top_suggestion_cells",
)


def _labels(values) -> pd.Categorical:
    values = pd.Series(values)
    if isinstance(values.dtype, pd.CategoricalDtype):
        return pd.Categorical(values)
    return pd.Categorical(values.astype(object).where(values.notna(), None))


def class_report(
    labels,
    flags,
    suggestions,
    mislabel_scores: np.ndarray | None = None,
    *,
    n_wrong: float | None = None,
    hard: str = "Hard-to-learn",
) -> pd.DataFrame:
    """One row per annotated class, largest first.

    Parameters
    ----------
    labels
        The annotation of each cell (missing labels are left out).
    flags
        Each cell's flag (Easy-to-learn / Ambiguous / Hard-to-learn).
    suggestions
        Each cell's suggested label (missing where there is none).
    mislabel_scores
        The probability that each label is wrong (label evidence), or ``None``.
    n_wrong
        The audit's estimate of wrong labels in all: per class the scores are scaled to
        add up to it. Default: their sum.
    hard
        The flag that marks a likely wrong label.

    Returns
    -------
    DataFrame indexed by class with :data:`REPORT_COLUMNS`: ``estimated_*`` are NaN
    without mislabel scores; ``top_suggestion`` is the most common suggested correction
    (a label other than the class) among the class's flagged cells (empty when none).
    """
    given = np.asarray(_labels(labels), dtype=object)
    flags = np.asarray(pd.Series(flags).astype(object))
    suggested = np.asarray(pd.Series(suggestions).astype(object))
    known = ~pd.isna(given)
    flagged = (flags == hard) & known
    frame = pd.DataFrame({"label": given[known], "flagged": flagged[known]})
    rows = frame.groupby("label", sort=False)
    report = pd.DataFrame({"cells": rows.size(), "flagged": rows["flagged"].sum()})
    report["flagged"] = report["flagged"].astype(int)
    report["flagged_pct"] = 100 * report["flagged"] / report["cells"]
    if mislabel_scores is None:
        report["estimated_wrong"] = np.nan
    else:
        scores = np.nan_to_num(np.asarray(mislabel_scores, dtype=float), nan=0.0)[known]
        sums = pd.Series(scores).groupby(frame["label"].to_numpy()).sum()
        total = float(sums.sum())
        scale = 1.0 if n_wrong is None or total == 0 else float(n_wrong) / total
        report["estimated_wrong"] = sums.reindex(report.index).to_numpy() * scale
    report["estimated_error_rate"] = report["estimated_wrong"] / report["cells"]
    chosen = flagged & ~pd.isna(suggested)
    chosen[chosen] = suggested[chosen].astype(str) != given[chosen].astype(str)  # corrections
    corrections = pd.DataFrame({"label": given[chosen], "suggested": suggested[chosen]})
    top, top_cells = [], []
    for label in report.index:
        counts = corrections.loc[corrections["label"] == label, "suggested"].value_counts()
        top.append(str(counts.index[0]) if len(counts) else "")
        top_cells.append(int(counts.iloc[0]) if len(counts) else 0)
    report["top_suggestion"] = top
    report["top_suggestion_cells"] = top_cells
    report.index = report.index.astype(str)
    report.index.name = "class"
    return report.sort_values("cells", ascending=False, kind="stable")[list(REPORT_COLUMNS)]


def suggestion_matrix(labels, suggestions) -> pd.DataFrame:
    """Cells by given label (rows) and suggested label (columns), where there is a suggestion.

    Only cells whose suggestion differs from their label count.
    """
    given = pd.Series(np.asarray(_labels(labels), dtype=object))
    suggested = pd.Series(np.asarray(pd.Series(suggestions).astype(object)))  # no index
    chosen = given.notna() & suggested.notna() & (given.astype(str) != suggested.astype(str))
    matrix = pd.crosstab(
        given[chosen].astype(str).rename("given"), suggested[chosen].astype(str).rename("suggested")
    )
    return matrix


def cells_given_suggested(labels, suggestions, given: str, suggested: str) -> np.ndarray:
    """Positions of the cells labelled ``given`` whose suggested label is ``suggested``."""
    labels = np.asarray(_labels(labels), dtype=object)
    suggestions = np.asarray(pd.Series(suggestions).astype(object))
    return np.flatnonzero((labels == given) & (suggestions == suggested))
