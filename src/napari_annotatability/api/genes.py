"""Gene scores (METHOD section 4): genes associated with annotation trainability."""

from __future__ import annotations

import pandas as pd
from anndata import AnnData

from napari_annotatability.api.stored_audits import confidence_key
from napari_annotatability.core.results import GeneScoresResult


def compute_gene_scores(
    adata: AnnData,
    *,
    label_key: str | None = None,
    conf_key: str | None = None,
    layer: str | None = None,
    min_counts: float = 100,
    power: float = 1,
    power_low: float = 1,
) -> GeneScoresResult:
    """Compute what :func:`gene_scores` writes, leaving ``adata`` unchanged."""
    from napari_annotatability.core.genes import gene_scores as _scores
    from napari_annotatability.core.inputs import select_matrix

    conf_key = confidence_key(adata, label_key, conf_key)
    X, _, _ = select_matrix(adata, layer=layer)
    scores = _scores(
        X, adata.obs[conf_key].to_numpy(), min_counts=min_counts, power=power, power_low=power_low
    )
    settings = {
        "conf_key": conf_key,
        "layer": layer or "X",
        "min_counts": float(min_counts),
        "power": float(power),
        "power_low": float(power_low),
    }
    return GeneScoresResult(scores=scores, settings=settings)


def gene_scores(
    adata: AnnData,
    *,
    label_key: str | None = None,
    conf_key: str | None = None,
    layer: str | None = None,
    min_counts: float = 100,
    power: float = 1,
    power_low: float = 1,
) -> pd.DataFrame:
    """Score genes by their association with annotation trainability (METHOD section 4).

    Writes ``var["conf_score_high"]``, ``var["conf_score_low"]`` and
    ``var["conf_score_mid"]`` (NaN for genes left out), ``var["conf_score_filtered"]``
    (why a gene was left out, empty when kept) and ``uns["annotatability_genes"]``.

    Parameters
    ----------
    adata
        Data with an audit (run :func:`annotate` first).
    label_key
        The audited annotation whose confidence to use (default: the only one audited).
    conf_key
        Another confidence column to use instead (e.g. the reference's ``"conf"``).
    layer
        Score ``adata.layers[layer]`` instead of ``X`` (e.g. raw counts).
    min_counts, power, power_low
        As in the reference: genes with a column sum below ``min_counts`` are left out.

    Returns
    -------
    A ranked table with columns ``gene``, ``score``, ``direction`` (``high``: expressed
    where annotations are learned confidently; ``low``: where they are not).
    """
    return compute_gene_scores(
        adata,
        label_key=label_key,
        conf_key=conf_key,
        layer=layer,
        min_counts=min_counts,
        power=power,
        power_low=power_low,
    ).write(adata)
