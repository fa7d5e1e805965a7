"""The audit of an annotation, summarised: by cell, by class, as a matrix, and as one HTML file.

:func:`cell_evidence` says why one cell is flagged (what the napari *Cell evidence*
widget shows).

:func:`class_report` and :func:`suggestion_matrix` read an audit stored in an AnnData
(:func:`~napari_annotatability.annotate`); :func:`write_report` puts them, the tissue
coloured by flags, the data map, the curation so far and the audit's parameters and
versions into one self-contained HTML file (figures embedded, nothing fetched).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.api.stored_audits import audit_summary, audited_key
from napari_annotatability.core import keys
from napari_annotatability.core.anndata_io import write_text_atomic
from napari_annotatability.core.cell_evidence import CellEvidence, CellEvidenceIndex
from napari_annotatability.core.class_report import (
    class_report as _class_report,
)
from napari_annotatability.core.class_report import (
    suggestion_matrix as _suggestion_matrix,
)
from napari_annotatability.core.coordinates import tissue_coordinates
from napari_annotatability.core.curation import EDITS_KEY, curated_key
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.html_report import HtmlReport, figure_png
from napari_annotatability.core.scores import FLAG_CATEGORIES, FLAG_COLORS, HARD

#: Most points drawn in the report's scatter plots (a random subset above it).
MAX_DRAWN = 200_000


def cell_evidence(adata: AnnData, cell: str | int, label_key: str | None = None) -> CellEvidence:
    """Why one cell is flagged: its curve, the models' classes, the cut-off, its genes.

    What the napari *Cell evidence* widget shows, for scripts and notebooks (see
    :class:`~napari_annotatability.core.cell_evidence.CellEvidence`). The tissue
    neighbours come from ``obsm["spatial"]`` when present. For many cells, make one
    :class:`~napari_annotatability.core.cell_evidence.CellEvidenceIndex` and call its
    ``of`` (class statistics are then computed once).

    Parameters
    ----------
    adata
        Data with an audit (:func:`~napari_annotatability.annotate`; with
        ``store_record=True`` for the training curve).
    cell
        Cell id (``obs_names``) or obs position.
    label_key
        The audited annotation (default: the only one audited).
    """
    key = audited_key(adata, label_key)
    if isinstance(cell, str):
        if cell not in adata.obs_names:
            raise AnnotatabilityInputError(f"No cell {cell!r} in adata.obs_names.")
        position = int(adata.obs_names.get_loc(cell))
    else:
        position = int(cell)
    try:
        coords, _ = tissue_coordinates(adata)
    except AnnotatabilityInputError:
        coords = None
    return CellEvidenceIndex(adata, key, coords).of(position)


def class_report(adata: AnnData, label_key: str | None = None) -> pd.DataFrame:
    """Per annotated class: cells, flagged, estimated wrong labels, top suggested correction.

    The estimated wrong labels of a class are its cells' mislabel scores, scaled so that
    all classes add up to the audit's estimate (:func:`audit_summary`); NaN for an audit
    with ``flags="dynamics"`` (no mislabel score).

    Parameters
    ----------
    adata
        Data with an audit (:func:`~napari_annotatability.annotate`).
    label_key
        The audited annotation (default: the only one audited).
    """
    key = audited_key(adata, label_key)
    info = adata.uns[keys.audit_key(key)]
    scores = adata.obs.get(keys.mislabel_key(key))
    n_wrong = info.get("evidence", {}).get("n_errors")
    suggested = adata.obs.get(keys.suggestion_key(key))
    return _class_report(
        adata.obs[key],
        adata.obs[keys.flag_key(key)],
        suggested if suggested is not None else pd.Series([None] * adata.n_obs),
        None if scores is None else scores.to_numpy(dtype=float),
        n_wrong=None if n_wrong is None else float(n_wrong),
    )


def suggestion_matrix(adata: AnnData, label_key: str | None = None) -> pd.DataFrame:
    """Cells by given label (rows) and suggested label (columns) of the audit of ``label_key``."""
    key = audited_key(adata, label_key)
    suggested = adata.obs.get(keys.suggestion_key(key))
    if suggested is None:
        return pd.DataFrame()
    return _suggestion_matrix(adata.obs[key], suggested)


def _sample(n: int, seed: int = 0) -> np.ndarray:
    if n <= MAX_DRAWN:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_DRAWN, replace=False))


def _flag_scatter(x, y, flags, title: str, xlabel: str, ylabel: str, *, equal: bool):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.2, 5.2))
    size = float(np.clip(30_000 / max(len(x), 1), 0.3, 12))
    for flag in FLAG_CATEGORIES:  # Hard last: on top
        chosen = flags == flag
        if chosen.any():
            axes.scatter(
                x[chosen],
                y[chosen],
                s=size,
                c=FLAG_COLORS[flag],
                linewidths=0,
                label=f"{flag} ({int(chosen.sum()):,})",
            )
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if equal:
        axes.set_aspect("equal")
        axes.invert_yaxis()  # image rows go down, as napari shows the tissue
    axes.legend(loc="best", markerscale=max(1.0, 6 / np.sqrt(size)), fontsize=8)
    return figure


def _curation_summary(adata: AnnData, key: str) -> pd.DataFrame | None:
    log = adata.uns.get(EDITS_KEY)
    curated = adata.obs.get(curated_key(key))
    if not isinstance(log, pd.DataFrame) and curated is None:
        return None
    rows = {}
    if curated is not None:
        original = adata.obs[key].astype(object).astype(str)
        changed = (curated.astype(object).astype(str) != original).to_numpy()
        rows["cells whose curated label differs from the annotation"] = int(changed.sum())
    if isinstance(log, pd.DataFrame) and len(log):
        if "label_key" in log:
            log = log[log["label_key"].astype(str) == key]
        for how, count in log["how"].astype(str).value_counts().items():
            rows[f"logged edits: {how}"] = int(count)
    return pd.DataFrame({"cells": pd.Series(rows, dtype=int)}).rename_axis("curation")


def _settings(info: dict) -> pd.DataFrame:
    params = {f"parameter: {k}": v for k, v in dict(info.get("params", {})).items()}
    versions = {f"version: {k}": v for k, v in dict(info.get("versions", {})).items()}
    extra = {"device": info.get("device", ""), "cells audited": info.get("n_cells_used", "")}
    values = {**extra, **params, **versions}
    return pd.DataFrame(
        {"value": [str(v) for v in values.values()]}, index=list(values)
    ).rename_axis("setting")


def build_report(adata: AnnData, label_key: str | None = None, *, title: str | None = None) -> str:
    """The HTML text of :func:`write_report`."""
    key = audited_key(adata, label_key)
    info = adata.uns[keys.audit_key(key)]
    flags = adata.obs[keys.flag_key(key)].astype(object).astype(str).to_numpy()
    report = HtmlReport(title or f"Annotation audit: {key}")
    report.paragraph(audit_summary(adata, key), css="summary")
    chosen = _sample(adata.n_obs)
    drawn = "" if len(chosen) == adata.n_obs else f" ({len(chosen):,} of {adata.n_obs:,} drawn)"
    report.heading("On the tissue and on the data map")
    if "spatial" in adata.obsm:
        xy = np.asarray(adata.obsm["spatial"], dtype=float)[chosen]
        report.figure(
            figure_png(
                _flag_scatter(
                    xy[:, 0],
                    xy[:, 1],
                    flags[chosen],
                    "Tissue, coloured by flag",
                    "x",
                    "y",
                    equal=True,
                )
            ),
            f"Cells at obsm['spatial'], coloured by flag{drawn}.",
            "tissue coloured by flag",
        )
    conf = adata.obs[keys.conf_key(key)].to_numpy(dtype=float)[chosen]
    var = adata.obs[keys.var_key(key)].to_numpy(dtype=float)[chosen]
    report.figure(
        figure_png(
            _flag_scatter(
                var, conf, flags[chosen], "Data map", "variability", "confidence", equal=False
            )
        ),
        f"Confidence against variability of each cell's label over training{drawn}.",
        "data map",
    )
    report.heading("By class")
    report.paragraph(
        f"Per annotated class: cells, cells flagged {HARD} (the likely wrong labels), the "
        "estimated number and rate of wrong labels, and the most common suggested label "
        "among the flagged cells."
    )
    report.table(class_report(adata, key))
    matrix = suggestion_matrix(adata, key)
    report.heading("Given label against suggested label")
    if matrix.size:
        report.paragraph("Cells whose suggested label differs from their label (rows: given).")
        report.table(matrix, shade=True)
    else:
        report.paragraph("No cell has a suggested label different from its own.")
    curation = _curation_summary(adata, key)
    report.heading("Curation")
    if curation is None or curation.empty:
        report.paragraph("No curation of this annotation is stored in the file.")
    else:
        report.table(curation)
    report.heading("Parameters and versions")
    report.table(_settings(info))
    return report.render()


def write_report(
    adata: AnnData,
    path: str | os.PathLike,
    label_key: str | None = None,
    *,
    overwrite: bool = False,
    title: str | None = None,
) -> Path:
    """Write the audit of ``label_key`` as one self-contained HTML file.

    The file holds the tissue coloured by flags (where ``obsm["spatial"]`` exists), the
    data map, the class report, the given x suggested matrix, the estimated number of
    wrong labels, the curation so far and the audit's parameters and versions; figures
    are embedded, so it opens offline in any browser. Written through a temporary file
    and a rename.

    Returns
    -------
    The path written.
    """
    text = build_report(adata, label_key, title=title)
    return write_text_atomic(text, path, overwrite=overwrite)
