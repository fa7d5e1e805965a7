"""Confidence, variability, noise-injection cut-offs and flags (METHOD sections 1.6 and 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from napari_annotatability.core.errors import AnnotatabilityInputError

EASY = "Easy-to-learn"
AMBIGUOUS = "Ambiguous"
HARD = "Hard-to-learn"
#: Flag categories, in the order the GUI and tables show them.
FLAG_CATEGORIES = (EASY, AMBIGUOUS, HARD)
#: Flag colours (layers, data map, report), safe for colour-blind eyes: Okabe and Ito's
#: sky blue for learned, a muted grey for ambiguous, a strong orange for likely wrong (the
#: cells a curator acts on stand out). Under simulated protan, deutan and tritan vision
#: every pair stays at least 35 CIELAB units apart (tests/core/test_scores.py).
FLAG_COLORS = {EASY: "#56b4e9", AMBIGUOUS: "#8a8a8a", HARD: "#e66100"}


def confidence_and_variability(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation over epochs of ``p[e, i]``.

    Parameters
    ----------
    probabilities
        Epochs x cells record.

    Returns
    -------
    ``conf`` and ``var`` (``float64``), one value per cell. ``var`` is the standard
    deviation with ``ddof=0``, the reference's "variability".
    """
    record = np.asarray(probabilities)
    if record.ndim != 2 or record.shape[0] == 0:
        raise AnnotatabilityInputError(
            f"The probability record must be epochs x cells with >= 1 epoch; got {record.shape}."
        )
    conf = record.mean(axis=0, dtype=np.float64)
    var = record.std(axis=0, dtype=np.float64, ddof=0)
    return conf, var


def inject_label_noise(
    codes: np.ndarray,
    n_classes: int,
    rate: float,
    rng: np.random.Generator,
    destinations: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip each label with probability ``rate`` to a different class.

    At least one cell is flipped (an extension: with few cells and a small rate the
    reference can flip none, which leaves the cut-offs undefined).

    Parameters
    ----------
    codes
        Class codes.
    n_classes
        Number of classes (>= 2).
    rate
        Flip probability ``q`` in (0, 1).
    rng
        Random generator.
    destinations
        ``C x C``: row ``c`` the probabilities that a flipped label ``c`` becomes each
        other class (diagonal 0). ``None``: uniformly chosen, as the reference does
        (the same random draws).

    Returns
    -------
    The corrupted codes and a boolean mask of the flipped cells.
    """
    if not 0 < rate < 1:
        raise AnnotatabilityInputError(f"noise_rate must be in (0, 1); got {rate!r}.")
    flipped = rng.random(codes.size) < rate
    if not flipped.any():
        flipped[rng.integers(codes.size)] = True
    noisy = codes.copy()
    if destinations is None:
        # A uniformly chosen *different* class: shift by 1..C-1 modulo C.
        shift = rng.integers(1, n_classes, size=int(flipped.sum()))
        noisy[flipped] = (codes[flipped] + shift) % n_classes
        return noisy, flipped
    given = codes[flipped]
    cumulative = np.cumsum(destinations, axis=1)[given]
    draw = rng.random(given.size)[:, None] * cumulative[:, -1:]
    moved = np.minimum((draw >= cumulative).sum(axis=1), n_classes - 1)
    stuck = moved == given  # only by rounding at the last class
    moved[stuck] = (given[stuck] + 1) % n_classes
    noisy[flipped] = moved
    return noisy, flipped


@dataclass(frozen=True)
class Cutoffs:
    """Noise-injection cut-offs (METHOD section 2).

    Attributes
    ----------
    conf, var
        The ``percentile`` of conf and of var over the flipped cells.
    percentile
        The percentile used.
    noise_rate
        The injected flip probability.
    n_flipped
        Number of flipped cells.
    """

    conf: float
    var: float
    percentile: float
    noise_rate: float
    n_flipped: int


def noise_cutoffs(
    conf: np.ndarray,
    var: np.ndarray,
    flipped: np.ndarray,
    *,
    percentile: float = 90,
    noise_rate: float = float("nan"),
) -> Cutoffs:
    """Cut-offs from a run on corrupted labels: percentiles over the flipped cells.

    Parameters
    ----------
    conf, var
        Confidence and variability against the corrupted labels.
    flipped
        Mask of the flipped cells.
    percentile
        Percentile in [0, 100] (default 90).
    noise_rate
        The flip probability used (recorded only).
    """
    if not 0 <= percentile <= 100:
        raise AnnotatabilityInputError(f"percentile must be in [0, 100]; got {percentile!r}.")
    flipped = np.asarray(flipped, dtype=bool)
    if not flipped.any():
        raise AnnotatabilityInputError("No flipped cells: the cut-offs are undefined.")
    return Cutoffs(
        conf=float(np.percentile(conf[flipped], percentile)),
        var=float(np.percentile(var[flipped], percentile)),
        percentile=float(percentile),
        noise_rate=float(noise_rate),
        n_flipped=int(flipped.sum()),
    )


#: Easy-to-learn by training dynamics: ``conf > EASY_CONF`` and ``var < EASY_VAR``.
EASY_CONF, EASY_VAR = 0.95, 0.15


def assign_flags(
    conf: np.ndarray,
    var: np.ndarray,
    cutoffs: Cutoffs | None,
    *,
    easy_conf: float = EASY_CONF,
    easy_var: float = EASY_VAR,
) -> pd.Categorical:
    """Flag each cell Easy-to-learn, Ambiguous or Hard-to-learn.

    Hard-to-learn: ``conf <= cutoffs.conf`` and ``var <= cutoffs.var``; otherwise
    Easy-to-learn if ``conf > easy_conf`` and ``var < easy_var``; else Ambiguous.
    Without cut-offs (not calibrated) no cell is Hard-to-learn.

    Returns
    -------
    A categorical with categories :data:`FLAG_CATEGORIES`.
    """
    conf = np.asarray(conf)
    var = np.asarray(var)
    flags = np.where((conf > easy_conf) & (var < easy_var), EASY, AMBIGUOUS).astype(object)
    if cutoffs is not None:
        flags[(conf <= cutoffs.conf) & (var <= cutoffs.var)] = HARD
    return pd.Categorical(flags, categories=list(FLAG_CATEGORIES))
