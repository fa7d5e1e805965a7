"""Calibration runs of the label evidence: refitted to labels with errors injected.

The scores the injected errors get tell how errors look on this data
(:mod:`~napari_annotatability.core.flag_calibration` turns them into cut-offs). Small
data repeat the injection with new random flips.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from napari_annotatability.core.dynamics import EpochProgress
from napari_annotatability.core.evidence import (
    Embedding,
    EvidenceParams,
    LabelEvidence,
    label_evidence,
)
from napari_annotatability.core.flag_calibration import error_destinations, restore_probability
from napari_annotatability.core.scores import inject_label_noise

#: Injected errors the calibration wants at least: small data repeat the injection
#: (new random flips each time) up to :data:`MAX_CALIBRATION_RUNS` times.
MIN_INJECTED = 100
MAX_CALIBRATION_RUNS = 8


def calibration_runs(n_cells: int, noise_rate: float) -> int:
    """Noise injections of the calibration: enough for :data:`MIN_INJECTED` errors."""
    per_run = max(1.0, noise_rate * n_cells)
    return int(min(MAX_CALIBRATION_RUNS, max(1, np.ceil(MIN_INJECTED / per_run))))


@dataclass(frozen=True)
class Calibration:
    """The evidence refitted to labels with errors injected, pooled over the injections.

    Attributes
    ----------
    scores
        Mislabel scores of every run's cells, run after run.
    injected
        Whether each of those cells had an error injected.
    restore
        Probability that an injected error on a wrong label gives back its true class
        (:func:`~napari_annotatability.core.flag_calibration.restore_probability`).
    """

    scores: np.ndarray
    injected: np.ndarray
    restore: float


def calibration_scores(
    embedding: Embedding,
    codes: np.ndarray,
    n_classes: int,
    params: EvidenceParams,
    main: LabelEvidence,
    *,
    noise_rate: float = 0.05,
    seed: int = 0,
    along_noise: bool = True,
    device: str | torch.device = "cpu",
) -> Generator[EpochProgress, None, Calibration]:
    """Inject errors into the labels and refit the evidence: how errors score on this data.

    :func:`calibration_runs` draws, each seeded by ``[seed, run]``. With ``along_noise``
    an injected error goes into the classes the main run's noise matrix says this
    annotation confuses (:func:`~napari_annotatability.core.flag_calibration.
    error_destinations`), so that injected errors score like its real ones; otherwise to
    a uniformly chosen class, as METHOD section 2. The refits reuse the main run's
    penalty and tissue weight and start from its weights, so that both score alike.
    """
    destinations = error_destinations(
        main.noise if along_noise else np.ones((n_classes, n_classes))
    )
    scores, masks = [], []
    for run in range(calibration_runs(len(codes), noise_rate)):
        noisy, injected = inject_label_noise(
            codes,
            n_classes,
            noise_rate,
            np.random.default_rng([seed, run]),
            destinations if along_noise else None,
        )
        check = yield from label_evidence(
            embedding,
            noisy,
            n_classes,
            params,
            device=device,
            penalty=main.penalty,
            spatial_weight=main.spatial_weight,
            n_components=main.n_components,
            start=main.state,
            phase="evidence calibration",
        )
        scores.append(check.mislabel_score)
        masks.append(injected)
    restore = restore_probability(main.posterior, codes, destinations)
    return Calibration(np.concatenate(scores), np.concatenate(masks), restore)
