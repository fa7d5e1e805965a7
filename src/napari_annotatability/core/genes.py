"""Gene scores: association of each gene with annotation trainability (METHOD section 4).

With ``A`` the gene columns centred and scaled to unit L2 norm, and weights from the
per-cell confidence ``conf``:

- ``conf_score_high = A^T (w_high ** power)``, ``w_high = conf / sum(conf)``
- ``conf_score_low = A^T (w_low ** power_low)``, ``w_low = (1 - conf) / sum(1 - conf)``
- ``conf_score_mid = A^T m``, ``m_i = 0`` where ``|w_high_i - mean(w_high)| > var(w_high)``
  (the reference compares with the *variance* of the normalised weights), else 1.

A sparse matrix is never densified: ``A^T w = (X^T w - mu * sum(w)) / norm`` with
``norm_g^2 = sum_i x_ig^2 - n mu_g^2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from napari_annotatability.core.errors import AnnotatabilityInputError

HIGH, LOW, MID = "conf_score_high", "conf_score_low", "conf_score_mid"


@dataclass(frozen=True)
class GeneScores:
    """Scores of the kept genes, and why the others were left out.

    Attributes
    ----------
    kept
        Boolean mask over the input genes that were scored.
    high, low, mid
        Scores of the kept genes.
    too_few_counts
        Mask of genes left out because their total is below ``min_counts``.
    constant
        Mask of genes left out because they do not vary across cells (zero norm).
    """

    kept: np.ndarray
    high: np.ndarray
    low: np.ndarray
    mid: np.ndarray
    too_few_counts: np.ndarray
    constant: np.ndarray


#: Rows per block when a dense matrix is multiplied in float64 (bounded extra memory).
_BLOCK_ROWS = 16384


def _transpose_times(X: np.ndarray | sp.csr_matrix, weights: np.ndarray) -> np.ndarray:
    """``X^T @ weights`` in float64, without a float64 copy of a dense ``X``."""
    if sp.issparse(X):
        return np.asarray(X.T @ weights, dtype=np.float64)
    out = np.zeros((X.shape[1], weights.shape[1]))
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        block = np.asarray(X[start : start + _BLOCK_ROWS], dtype=np.float64)
        out += block.T @ weights[start : start + _BLOCK_ROWS]
    return out


def mid_weights(conf: np.ndarray) -> np.ndarray:
    """``m_i`` of METHOD 4: 0 where the normalised weight deviates by more than its variance."""
    w_high = conf / conf.sum()
    return (np.abs(w_high - w_high.mean()) <= w_high.var()).astype(np.float64)


def gene_scores(
    X: np.ndarray | sp.spmatrix,
    conf: np.ndarray,
    *,
    min_counts: float = 100,
    power: float = 1,
    power_low: float = 1,
) -> GeneScores:
    """Score every gene of ``X`` (cells x genes) against the per-cell confidence.

    Parameters
    ----------
    X
        Expression, dense or sparse (never densified).
    conf
        Per-cell confidence in [0, 1].
    min_counts
        Keep genes whose column sum is at least this (reference default 100).
    power, power_low
        Exponents of the high and low weights (default 1).

    Returns
    -------
    The :class:`GeneScores`.
    """
    conf = np.asarray(conf, dtype=np.float64)
    n_cells = X.shape[0]
    if conf.shape != (n_cells,):
        raise AnnotatabilityInputError(
            f"conf has shape {conf.shape} but the matrix has {n_cells} cells."
        )
    if not np.isfinite(conf).all():
        raise AnnotatabilityInputError(
            f"conf has {int((~np.isfinite(conf)).sum())} missing or non-finite value(s); "
            "score only cells with a confidence (subset the AnnData first)."
        )
    if conf.sum() <= 0 or (1 - conf).sum() <= 0:
        raise AnnotatabilityInputError(
            "conf is all 0 or all 1, so the high or low weights are undefined."
        )
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        totals = np.asarray(X.sum(axis=0)).ravel().astype(np.float64)
        squares = np.asarray(X.multiply(X).sum(axis=0)).ravel().astype(np.float64)
    else:
        X = np.asarray(X)
        totals = X.sum(axis=0, dtype=np.float64)
        squares = np.einsum("ij,ij->j", X, X, dtype=np.float64)
    mu = totals / n_cells
    norm_sq = squares - n_cells * mu**2
    too_few = totals < min_counts
    constant = ~too_few & (norm_sq <= 1e-12 * np.maximum(squares, 1))
    kept = ~too_few & ~constant
    norm = np.sqrt(norm_sq[kept])

    w_high = conf / conf.sum()
    w_low = (1 - conf) / (1 - conf).sum()
    weights = np.column_stack([w_high**power, w_low**power_low, mid_weights(conf)])
    projected = _transpose_times(X, weights)[kept]  # genes x 3
    scores = (projected - mu[kept, None] * weights.sum(axis=0)) / norm[:, None]
    return GeneScores(
        kept=kept,
        high=scores[:, 0],
        low=scores[:, 1],
        mid=scores[:, 2],
        too_few_counts=too_few,
        constant=constant,
    )
