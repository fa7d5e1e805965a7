"""Label evidence: how likely each cell's label is wrong, judged by models that never saw it.

The training dynamics of METHOD section 1 learn from every label, the wrong ones
included, and average over untrained epochs; on real spatial data they rank mislabelled
cells below simple out-of-fold classifiers (docs/quality.md). The mislabel score here
puts together what the quality benchmark showed to work, with every weight set by the
data itself:

1. **Expression**: the cells' leading principal components
   (:func:`~napari_annotatability.core.pca.principal_components`: randomised PCA on the
   device; a sparse matrix is never densified); how many, the data choose (as the
   penalty below).
2. **Out of fold**: ``K`` softmax-regression models trained at once, model ``k`` on
   every cell outside fold ``k``; a cell is scored by the model of its own fold only.
   The L2 penalty is the one whose out-of-fold predictions give the given labels the
   highest likelihood.
3. **Tissue**: the labels of the cell's nearest neighbours on the tissue (never its
   own), mixed in at the weight that best predicts the given labels out of fold: high
   for spatial domains (cortical layers), near zero where cell types intermix.
4. **Label noise**: annotation errors go from a true class to a given class with the
   probabilities of a class x class noise matrix ``T`` (confusable classes are swapped
   more often). ``T`` and the true-class probabilities are fitted by EM; the posterior
   probability that a cell's given label is not its true class is its **mislabel score**,
   and the most probable other class is the suggested correction.

How many cells to flag comes from noise injection, as in METHOD section 2
(:func:`calibration_scores` here, :mod:`~napari_annotatability.core.flag_calibration`): the
scores that injected errors get tell how errors look on this data, and the number of
cells scored like them estimates the number of errors.

Memory is O(n (k + C)) for ``n`` cells, ``k`` components and ``C`` classes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from napari_annotatability.core.device_data import resolve_device
from napari_annotatability.core.dynamics import EpochProgress
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.label_noise import (
    FoldedSoftmaxRegression,
    fold_assignment,
    label_posterior,
    mean_log_likelihood,
    neighbour_label_distribution,
    noise_matrix,
    tissue_neighbours,
)
from napari_annotatability.core.pca import principal_components

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceParams:
    """Settings of the label evidence (defaults from docs/quality.md).

    Attributes
    ----------
    components
        Numbers of leading principal components tried (fewer when there are fewer
        features): the one whose out-of-fold predictions give the given labels the
        highest likelihood is kept, jointly with the penalty (few for small sections,
        where more components overfit; more for many-class panels).
    n_folds
        Out-of-fold models; each cell is scored by the one model that did not see it.
    penalties
        L2 penalties tried; the one with the best out-of-fold likelihood is kept.
    spatial_neighbours
        Nearest cells on the tissue whose labels form the tissue evidence (0: none).
    spatial_weights
        Weights of the tissue evidence tried (chosen by out-of-fold likelihood); at most
        0.9 by default, so that expression always has a say.
    em_iterations
        EM iterations of the label-noise model.
    noise_prior
        Pseudo-counts that pull each class's error destinations towards uniform (few
        errors per class pair cannot be told apart from chance).
    fit_iterations, refit_iterations
        L-BFGS iterations of the first fit, and of each later one (they start from the
        previous solution).
    seed
        Seed of the fold assignment and the PCA.
    """

    components: tuple[int, ...] = (5, 10, 20, 50)
    n_folds: int = 5
    penalties: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)
    spatial_neighbours: int = 10
    spatial_weights: tuple[float, ...] = tuple(i / 10 for i in range(10))
    em_iterations: int = 6
    noise_prior: float = 5.0
    fit_iterations: int = 100
    refit_iterations: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "components": len(self.components) > 0 and min(self.components) >= 1,
            "n_folds": self.n_folds >= 2,
            "penalties": len(self.penalties) > 0 and min(self.penalties) > 0,
            "spatial_neighbours": self.spatial_neighbours >= 0,
            "spatial_weights": len(self.spatial_weights) > 0
            and all(0 <= w <= 1 for w in self.spatial_weights),
            "em_iterations": self.em_iterations >= 0,
            "noise_prior": self.noise_prior >= 0,
            "fit_iterations": self.fit_iterations >= 1,
            "refit_iterations": self.refit_iterations >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise AnnotatabilityInputError(
                    f"{name}={getattr(self, name)!r} is out of range (components >= 1, "
                    "n_folds >= 2, penalties > 0, spatial_neighbours >= 0, spatial weights "
                    "in [0, 1], em_iterations >= 0, noise_prior >= 0, (re)fit_iterations >= 1)."
                )


@dataclass(frozen=True)
class LabelEvidence:
    """What the evidence says about each cell (cells in the order of the input).

    Attributes
    ----------
    mislabel_score
        Posterior probability that the given label is not the cell's true class.
    suggested
        Code of the most probable class other than the given one.
    ambiguity
        ``1 - (p1 - p2)`` of the true-class probabilities before the label is seen
        (``p1`` >= ``p2`` the two largest): 1 when the evidence is split evenly between
        two classes (mixtures, intermediate states), 0 when it is all on one.
    posterior
        ``n x C`` true-class probabilities given the evidence and the given label.
    prior
        ``n x C`` class probabilities before the label is seen: the out-of-fold models
        mixed with the tissue neighbours' labels (``float32``).
    noise
        ``C x C`` estimated noise matrix: ``noise[t, c]`` = P(given ``c`` | true ``t``).
    penalty, spatial_weight
        What the data chose.
    n_components
        Components used (chosen from :attr:`EvidenceParams.components`).
    seconds
        Wall time.
    label_accuracy
        Share of the cells whose likeliest class before the label is seen (``prior``) is
        the given label; compare with ``commonest_share``.
    commonest_share
        Share of the cells given the commonest label: what naming that class for every
        cell would reach.
    state
        The fitted models' weights (a later run on similar labels can start from them).
    """

    mislabel_score: np.ndarray
    suggested: np.ndarray
    ambiguity: np.ndarray
    posterior: np.ndarray
    prior: np.ndarray
    noise: np.ndarray
    penalty: float
    spatial_weight: float
    n_components: int
    seconds: float
    label_accuracy: float = float("nan")
    commonest_share: float = float("nan")
    state: tuple = ()


# --- out-of-fold softmax regression ----------------------------------------------------


@dataclass(frozen=True)
class Embedding:
    """The inputs shared by the evidence runs of one audit (main and calibration).

    Attributes
    ----------
    Z
        Principal components (cells x components, leading first).
    folds
        Fold of each cell.
    neighbours
        Each cell's nearest cells on the tissue (:func:`tissue_neighbours`), or ``None``
        (no tissue evidence). Found once; each run counts its own labels among them.
    """

    Z: np.ndarray
    folds: np.ndarray
    neighbours: np.ndarray | None


def embed(
    X: np.ndarray | sp.spmatrix,
    coords: np.ndarray | None,
    params: EvidenceParams,
    *,
    device: str | torch.device = "cpu",
) -> Embedding:
    """The principal components (the most tried), the folds and the tissue neighbours.

    ``coords`` ``None`` or ``params.spatial_neighbours`` 0: no tissue evidence.
    """
    n = X.shape[0]
    if n < 2 * params.n_folds:
        raise AnnotatabilityInputError(
            f"Label evidence needs at least {2 * params.n_folds} cells for "
            f"{params.n_folds}-fold models; got {n}. Use more cells or n_folds=2."
        )
    Z = principal_components(X, max(params.components), device=device, seed=params.seed)
    folds = fold_assignment(n, params.n_folds, params.seed)
    neighbours = None
    if coords is not None and params.spatial_neighbours > 0:
        neighbours = tissue_neighbours(coords, params.spatial_neighbours)
    return Embedding(Z.astype(np.float32), folds, neighbours)


def label_evidence(
    embedding: Embedding,
    codes: np.ndarray,
    n_classes: int,
    params: EvidenceParams = EvidenceParams(),
    *,
    device: str | torch.device = "cpu",
    penalty: float | None = None,
    spatial_weight: float | None = None,
    n_components: int | None = None,
    start: tuple | None = None,
    phase: str = "evidence",
) -> Generator[EpochProgress, None, LabelEvidence]:
    """Fit the evidence for the labels ``codes``; yields one progress update per fit.

    Parameters
    ----------
    embedding
        From :func:`embed`.
    codes
        Given class code of each cell.
    n_classes
        Number of classes.
    params
        Settings.
    device
        Where to compute.
    penalty, spatial_weight, n_components
        Use these instead of choosing them from the data (the calibration run reuses
        the main run's choice so that both score alike).
    start
        Weights to start from (:attr:`LabelEvidence.state` of a run on similar labels);
        every fit then takes ``refit_iterations``.
    phase
        Name in the progress updates.

    Returns
    -------
    The :class:`LabelEvidence`.
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    n = len(codes)
    C = n_classes
    Z_all = torch.as_tensor(embedding.Z, device=dev)
    folds = torch.as_tensor(embedding.folds, dtype=torch.int64, device=dev)
    y = torch.as_tensor(codes, dtype=torch.int64, device=dev)
    onehot = torch.zeros(n, C, device=dev)
    onehot[torch.arange(n, device=dev), y] = 1.0
    penalties = params.penalties if penalty is None else (penalty,)
    counts = params.components if n_components is None else (n_components,)
    n_steps = len(counts) * len(penalties) + params.em_iterations
    step = 0

    def progress() -> EpochProgress:
        return EpochProgress(phase, step, n_steps, float("nan"), time.perf_counter() - t0)

    best, tried = None, set()
    for count in counts:
        k = min(count, Z_all.shape[1])
        if k in tried:  # fewer features than components: the same model again
            for _ in penalties:
                step += 1
                yield progress()
            continue
        tried.add(k)
        model = FoldedSoftmaxRegression(_leading(Z_all, k), folds, params.n_folds, C)
        if start:
            model.load(start)
        for i, lam in enumerate(penalties):  # strongest first: each starts from the last
            iterations = params.refit_iterations if i or start else params.fit_iterations
            model.fit(onehot, lam, iterations)
            probs = model.out_of_fold()
            ll = mean_log_likelihood(probs, y)
            if best is None or ll > best[0]:
                best = (ll, lam, model, model.state(), probs)
            step += 1
            yield progress()
    _, lam, model, state, probs = best
    model.load(state)
    Z = model.Z

    tissue = None
    weights = (0.0,)
    if embedding.neighbours is not None:
        tissue = torch.as_tensor(
            neighbour_label_distribution(embedding.neighbours, codes, C), device=dev
        )
        weights = params.spatial_weights if spatial_weight is None else (spatial_weight,)
    w = max(weights, key=lambda v: mean_log_likelihood(_mix(probs, tissue, v), y))

    def prior_of(p: torch.Tensor) -> torch.Tensor:
        return _mix(p, tissue, w)

    T = torch.full((C, C), 0.2 / max(C - 1, 1), device=dev)
    T.fill_diagonal_(0.8 if C > 1 else 1.0)
    for _ in range(params.em_iterations):
        posterior = label_posterior(prior_of(probs), T, y)
        T = noise_matrix(posterior, y, C, params.noise_prior)
        model.fit(posterior, lam, params.refit_iterations)
        probs = model.out_of_fold()
        step += 1
        yield progress()
    prior = prior_of(probs)
    posterior = label_posterior(prior, T, y)
    rows = torch.arange(n, device=dev)
    score = 1 - posterior[rows, y]
    others = posterior.clone()
    others[rows, y] = -1.0
    top2 = prior.topk(min(2, C), dim=1).values
    ambiguity = 1 - (top2[:, 0] - top2[:, -1]) if C > 1 else torch.zeros(n, device=dev)
    seconds = time.perf_counter() - t0
    logger.info(
        "Label evidence (%s): %d cells, %d components, penalty %g, tissue weight %.2f, %.1f s.",
        phase,
        n,
        Z.shape[1],
        lam,
        w,
        seconds,
    )
    return LabelEvidence(
        mislabel_score=score.double().cpu().numpy(),
        suggested=others.argmax(dim=1).cpu().numpy(),
        ambiguity=ambiguity.double().cpu().numpy(),
        posterior=posterior.cpu().numpy(),
        prior=prior.float().cpu().numpy(),
        noise=T.cpu().numpy(),
        penalty=float(lam),
        spatial_weight=float(w),
        n_components=int(Z.shape[1]),
        seconds=seconds,
        label_accuracy=float((prior.argmax(dim=1) == y).float().mean()),
        commonest_share=float(torch.bincount(y, minlength=C).max()) / max(n, 1),
        state=model.state(),
    )


def _leading(Z: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` components, scaled to unit overall standard deviation."""
    lead = Z[:, :k]
    scale = lead.pow(2).mean().sqrt()
    return lead / scale if scale > 0 else lead


def _mix(probs: torch.Tensor, tissue: torch.Tensor | None, weight: float) -> torch.Tensor:
    """``(1 - weight) probs + weight tissue``: the expression and tissue evidence mixed."""
    if tissue is None or weight == 0:
        return probs
    return (1 - weight) * probs + weight * tissue
