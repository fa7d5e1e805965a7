"""How many labels are wrong, and the three flags of the label evidence.

The method's own noise injection, reused (METHOD section 2): labels with errors injected
on purpose show how wrong labels score on this data. The untouched cells' scores are a
mixture of correct and wrong labels; comparing them with the injected errors' scores
estimates the fraction of wrong labels (a mixture-proportion estimate). That sets how many
cells are Hard-to-learn, and how low a score must be for a label to be trusted
(Easy-to-learn).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import AMBIGUOUS, EASY, FLAG_CATEGORIES, HARD

logger = logging.getLogger(__name__)

#: Where on the injected errors' scores the error rate is read off (docs/quality.md).
ERROR_RATE_PERCENTILE = 25.0
#: Largest estimated fraction of wrong labels among the Easy-to-learn cells.
EASY_MAX_ERROR = 0.01
#: Easy-to-learn cells also need the evidence to favour one class by this margin
#: (``ambiguity < 1 - margin``): cells split between classes are Ambiguous.
EASY_MAX_AMBIGUITY = 0.5
#: Below this AUROC of the injected errors against the untouched cells (in the
#: calibration run) the evidence cannot tell errors from correct labels on the data, and
#: a count read off the injected errors would be meaningless (it approaches 100%).
MIN_SEPARATION = 0.6
#: Below this AUROC the count read off the injected errors is kept but uncertain: when the
#: untouched cells score like the injected errors, either many labels are wrong or the
#: evidence barely tells wrong from right, and the one-point estimate cannot say which
#: (it rises towards 100% in the second case). On the five real sections of
#: docs/quality.md the AUROC stayed >= 0.78 up to 30% injected errors of either kind and
#: fell to 0.65-0.86 at 40-50%; 1,000,000 synthetic cells with correct but barely
#: predictable labels gave 0.60 and an estimate of 82%.
CONFIDENT_SEPARATION = 0.75


@dataclass(frozen=True)
class EvidenceCutoffs:
    """Cut-offs of the three flags on the mislabel score.

    Attributes
    ----------
    error_rate
        Estimated fraction of wrong labels.
    n_errors
        Estimated number of wrong labels (cells flagged Hard-to-learn).
    hard, easy
        Scores at or above ``hard`` are Hard-to-learn; at or below ``easy`` (with
        ambiguity below ``max_ambiguity``) Easy-to-learn; the rest Ambiguous.
    max_ambiguity
        Largest ambiguity of an Easy-to-learn cell.
    method
        ``"noise injection"``, or ``"posterior"`` (no calibration run, or one whose
        injected errors scored like the correct labels).
    separation
        AUROC of the calibration run's injected errors against its untouched cells
        (NaN without a calibration run).
    """

    error_rate: float
    n_errors: int
    hard: float
    easy: float
    max_ambiguity: float
    method: str
    separation: float = float("nan")


def estimate_error_rate(
    scores: np.ndarray, injected: np.ndarray, percentile: float = ERROR_RATE_PERCENTILE
) -> float:
    """Fraction of wrong labels among the cells not injected, from one run's scores.

    The scores of the cells whose labels were left alone are a mixture
    ``(1 - r) F_correct + r F_wrong``; the injected errors show ``F_wrong``. At their
    ``percentile``-th score ``tau`` a fraction ``1 - percentile / 100`` of wrong labels
    scores above ``tau`` and few correct ones do, so
    ``r ≈ P(score >= tau) / (1 - percentile / 100)`` (a mixture-proportion estimate,
    Scott 2015, at one point). Scores from one run: the same model judges both.
    """
    scores = np.asarray(scores, dtype=float)
    injected = np.asarray(injected, dtype=bool)
    if not injected.any() or injected.all():
        raise AnnotatabilityInputError(
            "The error rate needs injected and untouched cells; got "
            f"{int(injected.sum())} injected of {injected.size}."
        )
    tau = np.percentile(scores[injected], percentile)
    above = float(np.mean(scores[~injected] >= tau))
    return min(1.0, above / (1 - percentile / 100))


def separation(scores: np.ndarray, injected: np.ndarray) -> float:
    """AUROC of the injected cells' scores against the untouched cells' (ties count half)."""
    injected = np.asarray(injected, dtype=bool)
    ranks = rankdata(np.asarray(scores, dtype=float))
    n_in, n_out = int(injected.sum()), int((~injected).sum())
    return float((ranks[injected].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def easy_quantile(
    scores: np.ndarray,
    injected: np.ndarray,
    error_rate: float,
    max_error: float = EASY_MAX_ERROR,
    restore: float = 0.0,
) -> float:
    """Largest share of the untouched cells, lowest scores first, with few wrong labels.

    Among the untouched cells scoring ``<= s`` the wrong ones are estimated as
    ``error_rate * G(s) / F(s)``, with ``F`` the share of untouched cells and ``G``
    (conservatively, one extra count) the share of injected errors scoring ``<= s``.
    An injected flip of a label that was already wrong gives the cell back its true
    class with probability ``restore`` (:func:`restore_probability`; ``1 / (C - 1)``
    for uniform flips): those cells are correct, not errors, and score like correct
    cells. ``G`` leaves out their expected number (``error_rate * restore`` of the
    injected cells, spread as ``F``; ``F`` includes the untouched wrong labels, so at
    low scores this removes too few, never too many). Returns ``F(s)`` at the largest
    ``s`` where the estimate is at most ``max_error`` (0 if none).
    """
    scores = np.asarray(scores, dtype=float)
    injected = np.asarray(injected, dtype=bool)
    ordered = np.sort(scores[~injected])
    wrong_scores = np.sort(scores[injected])
    n, m = ordered.size, wrong_scores.size
    below = np.arange(1, n + 1) / n
    restored = min(error_rate * restore, 1.0)
    counted = np.searchsorted(wrong_scores, ordered, side="right") - restored * m * below
    wrong = (np.maximum(counted, 0.0) + 1) / ((1 - restored) * m + 1)
    ok = np.flatnonzero(error_rate * wrong / below <= max_error)
    return float(below[ok[-1]]) if ok.size else 0.0


def error_destinations(noise: np.ndarray) -> np.ndarray:
    """Where the errors of each class go: the noise matrix without its diagonal, per row.

    ``noise[t, c]`` = P(given ``c`` | true ``t``) (:func:`~napari_annotatability.core.
    label_noise.noise_matrix`); row ``t`` of the result is the probability that an error
    on a cell of class ``t`` names class ``c``. Calibration errors injected along it
    (:func:`~napari_annotatability.core.scores.inject_label_noise`) go into the classes
    this data's annotation confuses, as its real errors do; a row without estimated
    errors is uniform.
    """
    off = np.array(noise, dtype=float)
    np.fill_diagonal(off, 0.0)
    total = off.sum(axis=1, keepdims=True)
    uniform = np.full_like(off, 1.0 / max(off.shape[0] - 1, 1))
    np.fill_diagonal(uniform, 0.0)
    return np.where(total > 0, off / np.where(total > 0, total, 1.0), uniform)


def restore_probability(
    posterior: np.ndarray, codes: np.ndarray, destinations: np.ndarray
) -> float:
    """Probability that an injected flip of a wrong label restores its true class.

    A cell of true class ``t`` labelled ``c`` is restored when the flip sends ``c`` to
    ``t`` (probability ``destinations[c, t]``); averaged over the cells with the weight
    of each true class in ``posterior`` (cells x classes, the label evidence's). For
    uniform destinations this is ``1 / (C - 1)``, also the answer when no label looks
    wrong.
    """
    posterior = np.asarray(posterior, dtype=float)
    codes = np.asarray(codes)
    rows = np.arange(codes.size)
    wrong = posterior.copy()
    wrong[rows, codes] = 0.0
    total = wrong.sum()
    if total <= 0:
        return 1.0 / max(destinations.shape[0] - 1, 1)
    return float((wrong * destinations[codes]).sum() / total)


def calibrate(
    scores: np.ndarray,
    injection: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    percentile: float = ERROR_RATE_PERCENTILE,
    max_easy_error: float = EASY_MAX_ERROR,
    max_ambiguity: float = EASY_MAX_AMBIGUITY,
    restore: float = 0.0,
) -> EvidenceCutoffs:
    """The flags' cut-offs on ``scores``, from a run with injected errors or the posterior.

    Parameters
    ----------
    scores
        Mislabel scores of the audit.
    injection
        ``(scores, injected)`` of the same evidence fitted to the labels with errors
        injected, and the mask of the injected cells. The error rate is estimated there
        (:func:`estimate_error_rate`); the ``round(rate * n)`` highest ``scores`` are
        Hard-to-learn; the Easy-to-learn cut-off is the score below which the same share
        of cells lies as below the calibration run's cut-off (:func:`easy_quantile`).
        Without it, or when the injected errors score like the untouched cells
        (:func:`separation` below :data:`MIN_SEPARATION`: the evidence cannot tell errors
        from correct labels on this data, and the count is not estimable), the score is
        read as a probability: above 0.5 Hard-to-learn, below ``max_easy_error``
        Easy-to-learn, the expected number of errors its sum.
    percentile, max_easy_error, max_ambiguity, restore
        See :func:`estimate_error_rate`, :func:`easy_quantile`, :func:`evidence_flags`.
    """
    scores = np.asarray(scores, dtype=float)
    n = scores.size
    apart = float("nan")
    if injection is not None:
        check, injected = injection
        apart = separation(check, injected)
        if apart < MIN_SEPARATION:
            logger.warning(
                "The injected errors scored like the correct labels (AUROC %.2f < %.2f): "
                "the evidence cannot tell wrong labels apart on this data, so the number "
                "of errors is not estimated; Hard-to-learn = mislabel score > 0.5.",
                apart,
                MIN_SEPARATION,
            )
    if injection is None or apart < MIN_SEPARATION:
        return EvidenceCutoffs(
            error_rate=float(scores.mean()),
            n_errors=int(np.sum(scores > 0.5)),
            hard=0.5,
            easy=max_easy_error,
            max_ambiguity=max_ambiguity,
            method="posterior",
            separation=apart,
        )
    rate = estimate_error_rate(check, injected, percentile)
    n_errors = round(rate * n)
    ordered = np.sort(scores)
    hard = float(ordered[n - n_errors]) if n_errors > 0 else float("inf")
    share = easy_quantile(check, injected, rate, max_easy_error, restore)
    easy = float(np.quantile(scores, share)) if share > 0 else float("-inf")
    return EvidenceCutoffs(rate, n_errors, hard, easy, max_ambiguity, "noise injection", apart)


def count_is_uncertain(method: str, separation: float) -> bool:
    """Whether a count read off the injected errors rests on a weak separation.

    ``True`` for ``method == "noise injection"`` with :func:`separation` below
    :data:`CONFIDENT_SEPARATION`: the count is kept, and said to be uncertain.
    """
    return method == "noise injection" and separation < CONFIDENT_SEPARATION


def uncertainty_note(separation: float, label_accuracy: float, commonest_share: float) -> str:
    """Why a count is uncertain, in words (for :func:`count_is_uncertain` counts).

    ``"uncertain: the injected errors stood apart with AUROC 0.60 only; the evidence names
    the given label for 18% of the cells, the commonest label alone 10%"``.
    """
    note = f"uncertain: the injected errors stood apart with AUROC {separation:.2f} only"
    if not (np.isnan(label_accuracy) or np.isnan(commonest_share)):
        note += (
            f"; the evidence names the given label for {label_accuracy:.0%} of the cells, "
            f"the commonest label alone {commonest_share:.0%}"
        )
    return note


def describe_errors(n_errors: int, n_cells: int) -> str:
    """``"about 204 of 3,636 labels (5.6%) look wrong"``: the estimate in words."""
    if n_errors == 0:
        return f"no label looks wrong (0 of {n_cells:,})"
    share = n_errors / n_cells if n_cells else 0.0
    return f"about {n_errors:,} of {n_cells:,} labels ({share:.1%}) look wrong"


def evidence_flags(
    scores: np.ndarray, ambiguity: np.ndarray, cutoffs: EvidenceCutoffs
) -> pd.Categorical:
    """Hard-to-learn, Ambiguous or Easy-to-learn from the mislabel score and ambiguity.

    Hard-to-learn: the ``cutoffs.n_errors`` highest scores (ties at the cut-off broken by
    cell order, so the count is exact; with ``method == "posterior"``: score > 0.5).
    Easy-to-learn: the rest with score ``<= cutoffs.easy`` and ambiguity below
    ``cutoffs.max_ambiguity`` (the evidence names the given class, by a margin). Else
    Ambiguous: the evidence is split between classes (mixtures, boundaries,
    intermediate states) or doubts the label without ranking it among the likely errors.
    """
    scores = np.asarray(scores, dtype=float)
    flags = np.full(scores.size, AMBIGUOUS, dtype=object)
    flags[(scores <= cutoffs.easy) & (np.asarray(ambiguity) < cutoffs.max_ambiguity)] = EASY
    if cutoffs.method == "posterior":
        flags[scores > cutoffs.hard] = HARD
    elif cutoffs.n_errors > 0:
        order = np.argsort(-scores, kind="stable")
        flags[order[: cutoffs.n_errors]] = HARD
    return pd.Categorical(flags, categories=list(FLAG_CATEGORIES))
