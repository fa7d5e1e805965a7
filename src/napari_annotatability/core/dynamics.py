"""Training dynamics (METHOD section 1): train the network, record p(annotated label) per epoch.

The loop is a generator: it yields one :class:`EpochProgress` per epoch and returns
the probability record, so a GUI can show progress and stop between epochs, and
the CLI can draw a progress bar. The data stay on the device; batches and sampled
indices are made there (dense input), and sparse input is never densified as a
whole: each batch is cut from the CSR matrix and multiplied sparse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from napari_annotatability.core.device_data import RECORD_BATCH_SIZE, DeviceMatrix, resolve_device
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.network import (
    AnnotatabilityNet,
    build_network,
)
from napari_annotatability.core.sampling import EpochSampler, epoch_draws, sampling_seed
from napari_annotatability.core.settings import default

logger = logging.getLogger(__name__)


#: The reference package's training settings where our defaults differ: pass
#: ``**REFERENCE_TRAINING`` to :class:`TrainingParams` to train as it does, run for run
#: (``nat.REFERENCE_SETTINGS`` adds its flags for :func:`~napari_annotatability.annotate`).
#: Our defaults, chosen by the quality benchmark (docs/quality.md): the learning rate is
#: set from the data (:func:`learning_rate`), hidden layers are at least 64 wide (a
#: 33-gene panel with 31 classes gets 33 -> 16 -> 8 -> 31 in the reference, which
#: under-fits) and an epoch has at least :data:`DEFAULT_MIN_STEPS` optimiser steps.
REFERENCE_TRAINING: dict = {"lr": 0.001, "min_width": None, "min_steps": None}
#: Optimiser steps per epoch at least (small data; see :func:`epoch_draws`).
DEFAULT_MIN_STEPS: int | None = int(default("min_steps"))
#: Bounds of the automatic learning rate: never below the reference's 0.001 (inputs
#: with a large norm train as in the reference), at most 1 (inputs with tiny values).
MIN_AUTO_LR = 0.001
MAX_AUTO_LR = 1.0


@dataclass(frozen=True)
class TrainingParams:
    """Hyper-parameters of one training run (METHOD section 1).

    The defaults are the reference's except ``lr`` (``"auto"``, reference 0.001),
    ``min_width`` (64, reference none) and ``min_steps``; see :data:`REFERENCE_TRAINING`.

    Attributes
    ----------
    epochs
        Number of epochs ``E`` (= number of probability records).
    lr, momentum
        SGD learning rate (``"auto"``: from the data, :func:`learning_rate`; the
        reference uses 0.001) and momentum.
    batch_size
        Cells per optimiser step.
    depth
        3, 4 or 5 linear layers.
    weighted_sampler
        Class-balanced sampling with replacement (``True``) or a permutation.
    seed
        Seeds the initial weights and the sampling.
    min_width
        Extension: lower bound for hidden widths (``None``: reference behaviour, whose
        narrow layers on small panels, e.g. 33 -> 16 -> 8 for 25 classes, under-fit).
    min_steps
        Extension: optimiser steps per epoch at least (``None``: one pass over the cells,
        as the reference; see :func:`epoch_draws`).
    """

    epochs: int = int(default("epochs"))
    lr: float | str = "auto"
    momentum: float = float(default("momentum"))
    batch_size: int = int(default("batch_size"))
    depth: int = 3
    weighted_sampler: bool = True
    seed: int = int(default("seed"))
    min_width: int | None = int(default("min_width"))
    min_steps: int | None = DEFAULT_MIN_STEPS

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "lr": self.lr == "auto" or (not isinstance(self.lr, str) and self.lr > 0),
            "momentum": 0 <= self.momentum < 1,
            "batch_size": self.batch_size >= 1,
            "min_steps": self.min_steps is None or self.min_steps >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise AnnotatabilityInputError(
                    f"{name}={getattr(self, name)!r} is out of range "
                    "(epochs >= 1, lr > 0 or 'auto', 0 <= momentum < 1, "
                    "batch_size >= 1, min_steps >= 1 or None)."
                )


@dataclass
class EpochProgress:
    """One progress update, yielded once per epoch.

    Attributes
    ----------
    phase
        ``"dynamics"``, ``"calibration"`` or ``"suggestion"``.
    epoch
        Epochs finished in this phase (1-based).
    n_epochs
        Epochs of this phase.
    loss
        Mean training loss of the epoch.
    elapsed
        Seconds since the phase started.
    mean_confidence
        Mean over cells of the running confidence (``nan`` when not recorded).
    record
        The probability records so far (epochs x cells view), or ``None``.
    step, total_steps
        Position over all phases of a multi-phase run (set by the API; 0 otherwise).
    """

    phase: str
    epoch: int
    n_epochs: int
    loss: float
    elapsed: float
    mean_confidence: float = float("nan")
    record: np.ndarray | None = field(default=None, repr=False)
    step: int = 0
    total_steps: int = 0

    @property
    def running_confidence(self) -> np.ndarray | None:
        """Per-cell confidence from the records so far."""
        return None if self.record is None else self.record.mean(axis=0, dtype=np.float64)


@dataclass(frozen=True)
class DynamicsRecord:
    """What a training-dynamics run returns.

    Attributes
    ----------
    probabilities
        ``float32`` array, epochs x cells: ``p[e, i]``, the probability given to the
        annotated label of cell ``i`` at the start of epoch ``e``.
    other_probabilities
        The same for a second annotation (METHOD 1.7), or ``None``.
    losses
        Mean training loss per epoch.
    device
        The device that ran it.
    seconds
        Wall time.
    lr
        The learning rate used (``"auto"`` resolved).
    """

    probabilities: np.ndarray
    other_probabilities: np.ndarray | None
    losses: tuple[float, ...]
    device: str
    seconds: float
    lr: float


def learning_rate(lr: float | str, mean_squared_norm: float) -> float:
    """The SGD learning rate of a run; ``"auto"`` sets it from the data.

    ``"auto"`` is ``1 / mean_i |x_i|^2``, kept within [:data:`MIN_AUTO_LR`,
    :data:`MAX_AUTO_LR`]: an SGD step on a cell then moves the first layer's output for
    that cell by the same amount whatever the scale and number of the features. The
    reference's fixed 0.001 suits inputs with ``mean |x|^2`` near 1,000 (e.g. 500
    log-normalised genes) but barely trains a 33-marker panel scaled to 0..1
    (``mean |x|^2`` = 7, ``"auto"`` 0.14); inputs with a larger norm keep the
    reference's 0.001, so ``"auto"`` never trains slower than the reference.

    Parameters
    ----------
    lr
        A positive number (used as is) or ``"auto"``.
    mean_squared_norm
        ``mean_i |x_i|^2`` of the input (:meth:`DeviceMatrix.mean_squared_norm`).

    Raises
    ------
    AnnotatabilityInputError
        For ``"auto"`` when every value of the input is zero.
    """
    if lr != "auto":
        return float(lr)
    if not mean_squared_norm > 0:
        raise AnnotatabilityInputError(
            "lr='auto' needs a non-zero input matrix, but every value is 0. "
            "Check the chosen layer / representation, or pass a number as lr."
        )
    return min(MAX_AUTO_LR, max(MIN_AUTO_LR, 1.0 / mean_squared_norm))


def _sgd(net: AnnotatabilityNet, lr: float, params: TrainingParams) -> torch.optim.SGD:
    """SGD with momentum; the fused kernel (one pass over all weights) where torch has it."""
    try:
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=params.momentum, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=params.momentum)


class _Trainer:
    """The network, optimiser, sampler and data of one run."""

    def __init__(
        self,
        data: DeviceMatrix,
        codes: np.ndarray,
        n_classes: int,
        params: TrainingParams,
        *,
        depth: int | None = None,
        train_rows: np.ndarray | None = None,
    ) -> None:
        dev = data.device
        self.data = data
        self.params = params
        # the pass over the data is only needed for "auto"
        norm = data.mean_squared_norm() if params.lr == "auto" else float("nan")
        self.lr = learning_rate(params.lr, norm)
        self.net: AnnotatabilityNet = build_network(
            data.n_cols,
            n_classes,
            depth=depth or params.depth,
            min_width=params.min_width,
            seed=params.seed,
            device=dev,
        )
        self.optimizer = _sgd(self.net, self.lr, params)
        self.codes = torch.as_tensor(codes, dtype=torch.int64, device=dev)
        rows = np.arange(data.n_rows) if train_rows is None else train_rows
        self.train_rows = torch.as_tensor(rows, dtype=torch.int64, device=dev)
        generator = torch.Generator(device=dev)
        generator.manual_seed(sampling_seed(params.seed))
        self.sampler = EpochSampler(
            self.codes[self.train_rows],
            n_classes,
            weighted=params.weighted_sampler,
            generator=generator,
        )
        self.draws_per_epoch = epoch_draws(rows.size, params.batch_size, params.min_steps)

    def train_epoch(self) -> float:
        """One epoch of sampled cells (:func:`epoch_draws`) in mini-batches; the mean loss."""
        self.net.train()
        order = self.train_rows[self.sampler.draw(self.draws_per_epoch)]
        total = torch.zeros((), device=self.data.device)
        for index, batch in self.data.batches(order, self.params.batch_size, for_training=True):
            log_p = self.net(batch)
            loss = F.nll_loss(log_p, self.codes[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * index.numel()
        return float(total) / max(1, order.numel())

    @torch.inference_mode()
    def log_probabilities(self, batch_rows: int | None = None):
        """Yield ``(start, stop, log-probabilities)`` over all cells, in blocks."""
        batch_rows = batch_rows or RECORD_BATCH_SIZE  # read at each call (tests set it)
        self.net.eval()
        for start in range(0, self.data.n_rows, batch_rows):
            stop = min(start + batch_rows, self.data.n_rows)
            yield start, stop, self.net(self.data.slice(start, stop))

    def record(self, label_codes: list[torch.Tensor]) -> list[torch.Tensor]:
        """Probability of each given annotation for every cell (no autograd graph)."""
        out = [torch.empty(self.data.n_rows, device=self.data.device) for _ in label_codes]
        for start, stop, log_p in self.log_probabilities():
            for dest, codes in zip(out, label_codes, strict=True):
                dest[start:stop] = log_p.gather(1, codes[start:stop, None]).squeeze(1).exp()
        return out


def training_dynamics(
    X: np.ndarray | sp.csr_matrix,
    codes: np.ndarray,
    n_classes: int,
    params: TrainingParams = TrainingParams(),
    *,
    device: str | torch.device = "auto",
    other_codes: np.ndarray | None = None,
    phase: str = "dynamics",
) -> Generator[EpochProgress, None, DynamicsRecord]:
    """Train the network and record per-epoch probabilities of the annotated label.

    Parameters
    ----------
    X
        Cells x features (dense ``float32`` array or CSR matrix).
    codes
        Annotated class code per cell.
    n_classes
        Number of classes.
    params
        Hyper-parameters.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:i"``.
    other_codes
        A second annotation whose probabilities are recorded too (METHOD 1.7).
    phase
        Name reported in the progress records.

    Yields
    ------
    One :class:`EpochProgress` per epoch, after its record and its updates.

    Returns
    -------
    The :class:`DynamicsRecord`. Stop early with ``generator.close()``.
    """
    dev = resolve_device(device)
    t0 = time.perf_counter()
    trainer = _Trainer(DeviceMatrix(X, dev), codes, n_classes, params)
    labels = [trainer.codes]
    if other_codes is not None:
        labels.append(torch.as_tensor(other_codes, dtype=torch.int64, device=dev))
    n = trainer.data.n_rows
    probabilities = np.empty((params.epochs, n), dtype=np.float32)
    other = np.empty((params.epochs, n), dtype=np.float32) if other_codes is not None else None
    running = torch.zeros(n, dtype=torch.float64, device=dev)
    losses: list[float] = []
    logger.info(
        "Training dynamics: %d cells x %d features (%s), %d classes, %d epochs, lr %.3g%s on %s.",
        n,
        trainer.data.n_cols,
        "sparse" if trainer.data.sparse else "dense",
        n_classes,
        params.epochs,
        trainer.lr,
        " (auto)" if params.lr == "auto" else "",
        dev,
    )
    for epoch in range(params.epochs):
        recorded = trainer.record(labels)
        running += recorded[0]
        probabilities[epoch] = recorded[0].cpu().numpy()
        if other is not None:
            other[epoch] = recorded[1].cpu().numpy()
        losses.append(trainer.train_epoch())
        yield EpochProgress(
            phase=phase,
            epoch=epoch + 1,
            n_epochs=params.epochs,
            loss=losses[-1],
            elapsed=time.perf_counter() - t0,
            mean_confidence=float(running.mean()) / (epoch + 1),
            record=probabilities[: epoch + 1],
        )
    return DynamicsRecord(
        probabilities=probabilities,
        other_probabilities=other,
        losses=tuple(losses),
        device=str(dev),
        seconds=time.perf_counter() - t0,
        lr=trainer.lr,
    )


def fit_and_predict(
    X: np.ndarray | sp.csr_matrix,
    codes: np.ndarray,
    n_classes: int,
    train_mask: np.ndarray,
    params: TrainingParams,
    *,
    device: str | torch.device = "auto",
    depth: int = 3,
    phase: str = "suggestion",
) -> Generator[EpochProgress, None, np.ndarray]:
    """Train a fresh network on the cells in ``train_mask``; predict the others (METHOD 3).

    Yields
    ------
    One :class:`EpochProgress` per epoch.

    Returns
    -------
    ``int64`` predicted class codes (argmax) of the cells outside ``train_mask``.
    """
    train_rows = np.flatnonzero(train_mask)
    if train_rows.size == 0:
        raise AnnotatabilityInputError(
            "No cells are left to train the correction network on (every cell is flagged)."
        )
    dev = resolve_device(device)
    t0 = time.perf_counter()
    trainer = _Trainer(
        DeviceMatrix(X, dev), codes, n_classes, params, depth=depth, train_rows=train_rows
    )
    for epoch in range(params.epochs):
        loss = trainer.train_epoch()
        yield EpochProgress(phase, epoch + 1, params.epochs, loss, time.perf_counter() - t0)
    predict = torch.as_tensor(~np.asarray(train_mask, dtype=bool), device=dev)
    predicted = torch.empty(trainer.data.n_rows, dtype=torch.int64, device=dev)
    for start, stop, log_p in trainer.log_probabilities():
        predicted[start:stop] = log_p.argmax(1)
    return predicted[predict].cpu().numpy()
