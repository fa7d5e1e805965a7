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
from napari_annotatability.core.flag_calibration import error_destinations, restore_probability
from napari_annotatability.core.pca import BLOCK_CELLS, principal_components
from napari_annotatability.core.scores import inject_label_noise

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
    noise
        ``C x C`` estimated noise matrix: ``noise[t, c]`` = P(given ``c`` | true ``t``).
    penalty, spatial_weight
        What the data chose.
    n_components
        Components used (chosen from :attr:`EvidenceParams.components`).
    seconds
        Wall time.
    state
        The fitted models' weights (a later run on similar labels can start from them).
    """

    mislabel_score: np.ndarray
    suggested: np.ndarray
    ambiguity: np.ndarray
    posterior: np.ndarray
    noise: np.ndarray
    penalty: float
    spatial_weight: float
    n_components: int
    seconds: float
    state: tuple = ()


# --- out-of-fold softmax regression ----------------------------------------------------


def fold_assignment(n: int, n_folds: int, seed: int) -> np.ndarray:
    """A balanced random fold (0..n_folds-1) for each of ``n`` cells."""
    return np.random.default_rng(seed).permutation(n) % n_folds


class FoldedSoftmaxRegression:
    """``K`` multinomial logistic regressions trained at once, model ``k`` without fold ``k``.

    Full-batch L-BFGS over blocks of cells (memory O(K x block x C) for the logits);
    targets may be soft (probabilities per class). Refits start from the last solution.
    """

    def __init__(self, Z: torch.Tensor, folds: torch.Tensor, n_folds: int, n_classes: int) -> None:
        self.Z = Z
        self.folds = folds
        self.n_folds = n_folds
        self.n_classes = n_classes
        dev, d = Z.device, Z.shape[1]
        self.W = torch.zeros(n_folds, d, n_classes, device=dev, requires_grad=True)
        self.b = torch.zeros(n_folds, 1, n_classes, device=dev, requires_grad=True)
        train = folds[None, :] != torch.arange(n_folds, device=dev)[:, None]
        self.train = train.float()  # K x n
        self.train_counts = self.train.sum(dim=1)  # K

    def _logits(self, start: int, stop: int) -> torch.Tensor:
        """``K x block x C`` logits of every model for the cells ``start:stop``."""
        K, d, C = self.W.shape
        flat = self.Z[start:stop] @ self.W.permute(1, 0, 2).reshape(d, K * C)
        return flat.view(-1, K, C).transpose(0, 1) + self.b

    def fit(self, targets: torch.Tensor, penalty: float, iterations: int) -> None:
        """Minimise each model's mean cross-entropy on its cells + ``penalty * |W|^2``."""
        optimiser = torch.optim.LBFGS(
            [self.W, self.b],
            lr=1,
            max_iter=iterations,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-5,
            tolerance_change=1e-7,
        )
        n = self.Z.shape[0]
        weights = self.train / self.train_counts[:, None]  # K x n

        def closure() -> torch.Tensor:
            optimiser.zero_grad(set_to_none=False)
            total = penalty * (self.W**2).sum()
            total.backward()
            total = total.detach()
            for start in range(0, n, BLOCK_CELLS):
                stop = min(n, start + BLOCK_CELLS)
                log_p = torch.log_softmax(self._logits(start, stop), dim=-1)
                nll = -(log_p * targets[None, start:stop]).sum(dim=-1)  # K x block
                loss = (nll * weights[:, start:stop]).sum()
                loss.backward()
                total = total + loss.detach()
            return total

        optimiser.step(closure)

    @torch.no_grad()
    def out_of_fold(self) -> torch.Tensor:
        """``n x C`` probabilities, each cell from the model that did not train on it."""
        n = self.Z.shape[0]
        out = torch.empty(n, self.n_classes, device=self.Z.device)
        for start in range(0, n, BLOCK_CELLS):
            stop = min(n, start + BLOCK_CELLS)
            probs = torch.softmax(self._logits(start, stop), dim=-1)  # K x block x C
            rows = torch.arange(stop - start, device=self.Z.device)
            out[start:stop] = probs[self.folds[start:stop], rows]
        return out

    def state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A copy of the weights."""
        return self.W.detach().clone(), self.b.detach().clone()

    def load(self, state: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Restore weights from :meth:`state`."""
        with torch.no_grad():
            self.W.copy_(state[0])
            self.b.copy_(state[1])


def mean_log_likelihood(probs: torch.Tensor, codes: torch.Tensor) -> float:
    """Mean log-probability of the given labels."""
    picked = probs.gather(1, codes[:, None]).squeeze(1).clamp_min(1e-12)
    return float(picked.log().mean())


# --- tissue: the labels around each cell ------------------------------------------------


def tissue_neighbours(coords: np.ndarray, k: int = 10) -> np.ndarray:
    """Each cell's ``k`` nearest other cells on the tissue: ``n x k`` indices.

    The cell itself is never among them (with duplicate positions it may not come
    first in the query). Fewer cells than ``k + 1``: all the others.
    """
    from scipy.spatial import cKDTree

    n = len(coords)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0), dtype=np.int64)
    _, idx = cKDTree(np.asarray(coords, dtype=float)).query(coords, k=k + 1)
    own = idx == np.arange(n)[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(n), drop] = False
    return idx[keep].reshape(n, k)


def neighbour_label_distribution(
    neighbours: np.ndarray, codes: np.ndarray, n_classes: int
) -> np.ndarray:
    """The labels of each cell's tissue neighbours as class probabilities.

    ``neighbours`` from :func:`tissue_neighbours` (so the cell's own label is never
    counted). Smoothed by one pseudo-count spread as the class frequencies, so no class
    gets probability 0.

    Returns
    -------
    ``float32`` array, cells x classes, rows summing to one.
    """
    n, k = neighbours.shape
    prior = np.bincount(codes, minlength=n_classes) / n
    counts = np.zeros((n, n_classes), dtype=np.float32)
    np.add.at(counts, (np.repeat(np.arange(n), k), codes[neighbours].ravel()), 1.0)
    return ((counts + prior) / (k + 1)).astype(np.float32)


# --- label noise: EM ---------------------------------------------------------------------


def noise_matrix(
    posterior: torch.Tensor, codes: torch.Tensor, n_classes: int, prior: float
) -> torch.Tensor:
    """M-step: ``T[t, c]`` = P(given ``c`` | true ``t``) from the true-class posteriors.

    The diagonal is the expected fraction of class ``t`` kept (one pseudo-count); the
    off-diagonal shares are shrunk towards uniform by ``prior`` pseudo-counts.
    """
    C = n_classes
    counts = torch.zeros(C, C, dtype=posterior.dtype, device=posterior.device)
    counts.index_add_(1, codes, posterior.T)  # counts[t, c] = sum_i post[i, t] [c_i = c]
    diag = counts.diagonal()
    total = counts.sum(dim=1)
    stay = (diag + 1.0) / (total + 1.0)
    off = counts - torch.diag(diag)
    if C > 1:
        shares = (off + prior / (C - 1)) / (off.sum(dim=1, keepdim=True) + prior + 1e-12)
        shares.fill_diagonal_(0.0)
    else:
        shares = torch.zeros_like(off)
    T = shares * (1 - stay)[:, None]
    T += torch.diag(stay)
    return T


def label_posterior(prior: torch.Tensor, T: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """E-step: P(true ``t`` | evidence, given label) ∝ prior[i, t] T[t, given_i]."""
    joint = prior * T[:, codes].T
    return joint / joint.sum(dim=1, keepdim=True).clamp_min(1e-30)


# --- the whole computation ---------------------------------------------------------------


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
        noise=T.cpu().numpy(),
        penalty=float(lam),
        spatial_weight=float(w),
        n_components=int(Z.shape[1]),
        seconds=seconds,
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


# --- calibration runs: the evidence refitted to labels with injected errors -----------

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
