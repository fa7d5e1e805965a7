"""What the training worker yields and returns; plain Python, safe off the GUI thread."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
from anndata import AnnData

from napari_annotatability.api import AnnotatabilityResult, annotate_steps
from napari_annotatability.core.steps import relay


@dataclass(frozen=True)
class TrainingUpdate:
    """One epoch finished, as the GUI needs it.

    Attributes
    ----------
    phase
        ``"dynamics"``, ``"calibration"`` or ``"suggestion"``.
    epoch, n_epochs
        Position within the phase.
    step, total_steps
        Position over the whole run.
    loss
        Mean training loss of the epoch.
    running_confidence
        Per-cell confidence so far (dynamics phase only, one value per trained cell),
        a fresh array the GUI may keep.
    """

    phase: str
    epoch: int
    n_epochs: int
    step: int
    total_steps: int
    loss: float
    running_confidence: np.ndarray | None = None


def training_updates(
    adata: AnnData, label_key: str, **kwargs
) -> Generator[TrainingUpdate, None, AnnotatabilityResult]:
    """Run :func:`~napari_annotatability.api.annotate_steps`, yielding light updates.

    The running confidence is kept as a sum of the epochs' probabilities (O(cells)
    per epoch) rather than re-averaging the whole record each time.
    """
    running_sum: np.ndarray | None = None

    def light(update) -> TrainingUpdate:
        nonlocal running_sum
        running = None
        if update.phase == "dynamics" and update.record is not None:
            latest = np.asarray(update.record[-1], dtype=np.float64)
            running_sum = latest.copy() if running_sum is None else running_sum + latest
            running = running_sum / len(update.record)
        return TrainingUpdate(
            phase=update.phase,
            epoch=update.epoch,
            n_epochs=update.n_epochs,
            step=update.step,
            total_steps=update.total_steps,
            loss=update.loss,
            running_confidence=running,
        )

    return (yield from relay(annotate_steps(adata, label_key, **kwargs), light))
