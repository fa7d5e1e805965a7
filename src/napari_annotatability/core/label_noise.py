"""Building blocks of the label evidence: out-of-fold models, tissue, label noise.

Out-of-fold softmax regression, the labels of tissue neighbours and the class x class
label-noise model fitted by EM.
"""

from __future__ import annotations

import numpy as np
import torch

from napari_annotatability.core.pca import BLOCK_CELLS


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
