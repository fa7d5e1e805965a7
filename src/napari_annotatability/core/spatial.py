"""Spatial context: how far a cell's label agrees with the cells around it on the tissue.

A mislabelled cell often disagrees with its neighbours. The reference method ignores the
tissue; these scores add it as an option, never by default (see docs/quality.md).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from napari_annotatability.core.errors import AnnotatabilityInputError


def neighbour_agreement(coords: np.ndarray, codes: np.ndarray, k: int = 10) -> np.ndarray:
    """Fraction of each cell's ``k`` nearest other cells that carry the same label.

    Parameters
    ----------
    coords
        ``(n, d)`` positions on the tissue.
    codes
        Integer label codes (``-1``: missing; such neighbours are not counted).
    k
        Neighbours per cell (the cell itself excluded). O(n k) memory.

    Returns
    -------
    One value in [0, 1] per cell; NaN for a missing label or no labelled neighbour.
    """
    coords = np.asarray(coords, dtype=float)
    codes = np.asarray(codes)
    n = len(coords)
    if codes.shape != (n,):
        raise AnnotatabilityInputError(
            f"{codes.shape[0]} labels for {n} cells: give one label per cell."
        )
    if k < 1:
        raise AnnotatabilityInputError(f"k must be at least 1; got {k}.")
    k = min(k, n - 1)
    if k < 1:
        return np.full(n, np.nan)
    _, neighbours = cKDTree(coords).query(coords, k=k + 1)
    neighbours = neighbours[:, 1:]  # drop the cell itself (ties: at worst one other)
    theirs = codes[neighbours]
    labelled = theirs >= 0
    same = (theirs == codes[:, None]) & labelled
    counted = labelled.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = same.sum(axis=1) / counted
    agreement[(codes < 0) | (counted == 0)] = np.nan
    return agreement


def spatial_confidence(conf: np.ndarray, agreement: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * conf + weight * agreement``: trainability and tissue context."""
    if not 0 <= weight <= 1:
        raise AnnotatabilityInputError(f"weight must lie in [0, 1]; got {weight}.")
    return (1 - weight) * np.asarray(conf, dtype=float) + weight * np.asarray(agreement)
