"""The trainability-aware kNN graph (METHOD section 5), exact, in O(n k) memory.

``D'_ij = alpha * D_ij / Dbar + (1 - alpha) * |r_i - r_j| / M`` mixes the Euclidean
distance ``D`` in an embedding (PCA) with the distance between the cells' confidence
ranks ``r``; each cell keeps its ``k`` nearest cells under ``D'`` and the edges weigh
``exp(-D'_ij / Dbar')``. The dense n x n matrices of the reference are never built:
queries run in blocks against all cells and keep only their ``k`` best, so memory is
O(n k) plus one block.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)

#: Entries of one block x all cells distance matrix (128 MB in float64).
_BLOCK_ENTRIES = 2**24


def confidence_ranks(conf: np.ndarray) -> np.ndarray:
    """Position of each cell when sorted by confidence ascending (stable: ties by index)."""
    order = np.argsort(np.asarray(conf), kind="stable")
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(order.size)
    return ranks


def mean_rank_distance(n: int) -> float:
    """``M = (n + 1) / 3``, the mean of ``|r_i - r_j|`` over unordered pairs ``i < j``."""
    return (n + 1) / 3


def mean_mixed_distance(n: int, alpha: float) -> float:
    """``Dbar'``: the mean of ``D'`` over all n^2 ordered pairs, in closed form."""
    return alpha + (1 - alpha) * (n - 1) / n


def _block_rows(n: int, entries: int = _BLOCK_ENTRIES) -> int:
    return max(1, min(n, entries // max(n, 1)))


def mean_pairwise_distance(Z: np.ndarray) -> float:
    """Exact mean Euclidean distance over all n^2 ordered pairs (diagonal included).

    O(n^2 d) time in blocks, O(n) extra memory beyond one block.
    """
    Zt = torch.as_tensor(np.asarray(Z, dtype=np.float64))
    n = Zt.shape[0]
    total = 0.0
    step = _block_rows(n)
    for start in range(0, n, step):
        total += float(torch.cdist(Zt[start : start + step], Zt).sum())
    return total / n**2


def estimate_mean_pairwise_distance(
    Z: np.ndarray, n_pairs: int = 2_000_000, seed: int = 0
) -> tuple[float, float]:
    """Estimate the mean distance from random ordered pairs.

    Returns
    -------
    The estimate and its relative standard error.
    """
    Z = np.asarray(Z)
    rng = np.random.default_rng(seed)
    n = Z.shape[0]
    total = total_sq = 0.0
    for start in range(0, n_pairs, 100_000):  # in chunks: O(chunk x d) memory
        size = min(100_000, n_pairs - start)
        i, j = rng.integers(0, n, size), rng.integers(0, n, size)
        d = np.linalg.norm(Z[i].astype(np.float64) - Z[j], axis=1)
        total += d.sum()
        total_sq += (d**2).sum()
    mean = total / n_pairs
    variance = max(total_sq / n_pairs - mean**2, 0.0) * n_pairs / (n_pairs - 1)
    rel_error = float(np.sqrt(variance / n_pairs) / mean) if mean > 0 else 0.0
    return float(mean), rel_error


@dataclass(frozen=True)
class TrainabilityGraph:
    """The graph in scanpy's layout, and how it was built.

    Attributes
    ----------
    connectivities
        Symmetric CSR: ``W_ij = exp(-D'_ij / Dbar')`` where ``j`` is among the ``k``
        nearest cells of ``i`` or ``i`` among those of ``j``.
    distances
        CSR with the ``k`` nearest cells of each row and their ``D'``.
    mean_distance
        ``Dbar`` used.
    """

    connectivities: sp.csr_matrix
    distances: sp.csr_matrix
    mean_distance: float


def trainability_graph(
    Z: np.ndarray,
    conf: np.ndarray,
    *,
    alpha: float = 0.9,
    k: int = 15,
    mean_distance: float | None = None,
) -> TrainabilityGraph:
    """Build the trainability-aware graph exactly.

    Parameters
    ----------
    Z
        Cells x components embedding (e.g. PCA).
    conf
        Per-cell confidence.
    alpha
        Weight of the embedding distance against the confidence-rank distance, in [0, 1].
    k
        Neighbours per cell (``1 <= k < n``).
    mean_distance
        ``Dbar``; computed exactly when ``None``.

    Returns
    -------
    The :class:`TrainabilityGraph`. Ties in ``D'`` are broken by the lower cell index.
    """
    Z = np.asarray(Z, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    n = Z.shape[0]
    if Z.ndim != 2 or conf.shape != (n,):
        raise AnnotatabilityInputError(
            f"The embedding ({Z.shape}) and conf ({conf.shape}) must cover the same cells."
        )
    if not 0 <= alpha <= 1:
        raise AnnotatabilityInputError(f"alpha must be in [0, 1]; got {alpha!r}.")
    if not 1 <= k < n:
        raise AnnotatabilityInputError(f"k must be between 1 and n - 1 = {n - 1}; got {k!r}.")
    if not (np.isfinite(Z).all() and np.isfinite(conf).all()):
        raise AnnotatabilityInputError("The embedding or conf has NaN or infinite values.")
    if mean_distance is None:
        mean_distance = mean_pairwise_distance(Z)
    if mean_distance <= 0:
        raise AnnotatabilityInputError("All cells sit at one point of the embedding (Dbar = 0).")
    mixed = _MixedDistance(
        Z, confidence_ranks(conf), alpha / mean_distance, (1 - alpha) / mean_rank_distance(n)
    )
    neighbours = np.empty((n, k), dtype=np.int64)
    values = np.empty((n, k), dtype=np.float64)
    if n > _PRUNE_ABOVE:
        groups = _ClusterBounds(mixed, _cluster_count(n)).query_groups(k)
    else:
        everyone = torch.arange(n)
        step = _block_rows(n)
        groups = ((torch.arange(s, min(n, s + step)), everyone) for s in range(0, n, step))
    for rows, cols in groups:
        neighbours[rows], values[rows] = mixed.k_nearest(rows, k, cols)
    weights = np.exp(-values / mean_mixed_distance(n, alpha))
    rows = np.repeat(np.arange(n), k)
    distances = sp.csr_matrix((values.ravel(), (rows, neighbours.ravel())), shape=(n, n))
    directed = sp.csr_matrix((weights.ravel(), (rows, neighbours.ravel())), shape=(n, n))
    connectivities = directed.maximum(directed.T).tocsr()
    return TrainabilityGraph(connectivities, distances, float(mean_distance))


#: Above this many cells, whole clusters of the embedding are skipped by a lower bound.
_PRUNE_ABOVE = 20_000


def _cluster_count(n: int) -> int:
    return max(2, int(np.sqrt(n)))


#: Multiplies the float32 error bound (tests raise it to send every row down the exact path).
_TOLERANCE_SAFETY = 1.0


class _MixedDistance:
    """``D'`` between query cells and all cells, fast in bulk and exact where it decides.

    The bulk pass uses float32 matrix products (``|a|^2 + |b|^2 - 2ab``); its error on a
    distance is at most ``sqrt(8 eps (|a|^2 + |b|^2))``, which bounds how far a cell
    outside the candidates could be from the exact ``k``-th value.
    """

    def __init__(self, Z: np.ndarray, ranks: np.ndarray, scale_d: float, scale_r: float):
        Z = Z - Z.mean(axis=0)  # distances are unchanged; smaller norms, smaller errors
        self.Z = torch.as_tensor(Z)
        self.Z32 = self.Z.float()
        self.ranks = torch.as_tensor(ranks, dtype=torch.float64)
        self.ranks32 = self.ranks.float()[:, None]  # exact below 2^24 cells
        self.scale_d, self.scale_r = scale_d, scale_r
        norm_sq = float((self.Z**2).sum(dim=1).max())
        eps = float(torch.finfo(torch.float32).eps)
        # float32 distance error, plus the rounding of the float32 sum of two terms ~1
        self.tolerance = _TOLERANCE_SAFETY * (
            scale_d * np.sqrt(8 * eps * 2 * norm_sq) + 8 * eps * (1 + scale_d)
        )

    def _rank_term(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return self.scale_r * (self.ranks[rows] - self.ranks[cols]).abs()

    def fast(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """``D'`` of ``rows`` x ``cols`` via matrix products (error below the tolerance)."""
        out = torch.cdist(self.Z32[rows], self.Z32[cols]).mul_(self.scale_d)
        out.add_(torch.cdist(self.ranks32[rows], self.ranks32[cols], p=1), alpha=self.scale_r)
        return out.masked_fill_(cols[None, :] == rows[:, None], torch.inf)

    def exact(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """``D'`` of the pairs ``(rows[:, None], cols)`` from coordinate differences."""
        diff = self.Z[rows][:, None, :] - self.Z[cols]
        out = self.scale_d * torch.linalg.vector_norm(diff, dim=2)
        out += self._rank_term(rows[:, None], cols)
        return out.masked_fill(cols == rows[:, None], torch.inf)

    def k_nearest(
        self, rows: torch.Tensor, k: int, cols: torch.Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest cells (among ``cols``, default all) of each row, exact ``D'``.

        Ties go to the lower cell index; ``cols`` must hold the rows themselves and at
        least ``k`` other cells.

        Candidates come from the fast distances (``2k`` per row); they are rescored
        exactly, and a row whose candidates might miss a cell within the tolerance of
        its exact ``k``-th value is rescored on every cell within that tolerance.
        """
        if cols is None:
            cols = torch.arange(self.Z.shape[0])
        fast = self.fast(rows, cols)
        m = min(2 * k, cols.numel() - 1)
        approx, local = torch.topk(fast, m, dim=1, largest=False, sorted=True)
        approx, cand = approx.double(), cols[local]
        exact = self.exact(rows, cand)
        kth = torch.kthvalue(exact, k, dim=1).values
        unsafe = (approx[:, -1] <= kth + self.tolerance) & (m < cols.numel() - 1)
        idx, val = cand.numpy(), exact.numpy()
        order = np.lexsort((idx, val), axis=1)[:, :k]
        idx, val = np.take_along_axis(idx, order, 1), np.take_along_axis(val, order, 1)
        for r in torch.nonzero(unsafe).flatten().tolist():
            # every cell whose exact D' could be <= the k-th lies within the tolerance
            near = cols[torch.nonzero(fast[r].double() <= kth[r] + self.tolerance).flatten()]
            near_exact = self.exact(rows[r : r + 1], near[None, :])[0].numpy()
            near = near.numpy()
            best = np.lexsort((near, near_exact))[:k]
            idx[r], val[r] = near[best], near_exact[best]
        return idx, val


class _ClusterBounds:
    """Cells grouped around random centres, with bounds that let a query skip a group.

    For a query ``i`` and a cluster ``c`` with centre ``mu_c``, radius ``R_c`` and rank
    interval ``[lo_c, hi_c]``, every member ``j`` has
    ``D'_ij >= a * max(0, |z_i - mu_c| - R_c) + b * dist(r_i, [lo_c, hi_c])``
    (triangle inequality), so a cluster whose bound exceeds a known upper bound of the
    query's ``k``-th ``D'`` cannot hold a neighbour.
    """

    def __init__(self, mixed: _MixedDistance, n_clusters: int, seed: int = 0) -> None:
        self.mixed = mixed
        Z = mixed.Z
        n = Z.shape[0]
        rng = np.random.default_rng(seed)
        self.centres = Z[torch.as_tensor(rng.choice(n, n_clusters, replace=False))]
        assign = torch.empty(n, dtype=torch.int64)
        step = _block_rows(n_clusters)
        for start in range(0, n, step):
            stop = min(n, start + step)
            assign[start:stop] = self._centre_distance(torch.arange(start, stop)).argmin(1)
        radius = torch.linalg.vector_norm(Z - self.centres[assign], dim=1)
        zeros = torch.zeros(n_clusters, dtype=torch.float64)
        self.radius = zeros.scatter_reduce(0, assign, radius, "amax", include_self=False)
        ranks = mixed.ranks
        self.rank_lo = zeros.scatter_reduce(0, assign, ranks, "amin", include_self=False)
        self.rank_hi = zeros.scatter_reduce(0, assign, ranks, "amax", include_self=False)
        self.order = torch.argsort(assign, stable=True)
        self.sizes = torch.bincount(assign, minlength=n_clusters)
        self.starts = torch.cumsum(self.sizes, 0) - self.sizes

    def _centre_distance(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.cdist(
            self.mixed.Z[rows], self.centres, compute_mode="donot_use_mm_for_euclid_dist"
        )

    def members(self, clusters: torch.Tensor) -> torch.Tensor:
        """Cells of the given clusters, in ascending index order."""
        parts = [self.order[self.starts[c] : self.starts[c] + self.sizes[c]] for c in clusters]
        return torch.sort(torch.cat(parts)).values

    def lower_bounds(self, rows: torch.Tensor) -> torch.Tensor:
        """Lower bound of ``D'`` from each row to any member of each cluster."""
        m = self.mixed
        gap_d = (self._centre_distance(rows) - self.radius).clamp_(min=0)
        r = m.ranks[rows, None]
        gap_r = (self.rank_lo - r).clamp(min=0) + (r - self.rank_hi).clamp(min=0)
        return m.scale_d * gap_d + m.scale_r * gap_r - 1e-9

    def query_groups(self, k: int):
        """Yield ``(rows, cols)``: each cluster's cells with the cells they must scan."""
        for c in torch.nonzero(self.sizes).flatten().tolist():
            cells = self.members(torch.tensor([c]))
            for start in range(0, cells.numel(), 1024):
                rows = cells[start : start + 1024]
                bounds = self.lower_bounds(rows)
                # an upper bound of each row's k-th D' from the closest clusters
                by_bound = torch.argsort(bounds.min(0).values)
                enough = int(torch.searchsorted(torch.cumsum(self.sizes[by_bound], 0), 2 * k + 1))
                first = self.members(
                    torch.cat([torch.tensor([c]), by_bound[: enough + 1]]).unique()
                )
                _, first_values = self.mixed.k_nearest(rows, k, first)
                kth = torch.as_tensor(first_values[:, -1])
                needed = torch.nonzero((bounds <= kth[:, None]).any(0)).flatten()
                yield rows, self.members(torch.cat([torch.tensor([c]), needed]).unique())
