"""Principal components on the device, for dense or sparse matrices (never densified)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from napari_annotatability.core.device_data import csr_parts, resolve_device
from napari_annotatability.core.network import CSRParts

#: Cells per block when a computation runs over all cells (bounded device memory; a
#: sparse matrix with few columns is made dense a block at a time).
BLOCK_CELLS = 65536


def _to_device(X: np.ndarray | sp.spmatrix, device: torch.device):
    """X as a dense tensor, or its rows and its transpose's rows when sparse.

    Sparse indices keep scipy's 32-bit integers where they fit (no 64-bit copies).
    """
    if sp.issparse(X):
        csr = sp.csr_matrix(X, dtype=np.float32)

        def on_device(parts: CSRParts) -> CSRParts:
            return CSRParts(*(t.to(device) for t in (parts.starts, parts.indices, parts.values)))

        mean = torch.as_tensor(np.asarray(csr.mean(axis=0)).ravel(), device=device)
        return on_device(csr_parts(csr)), on_device(csr_parts(csr.tocsc())), mean
    dense = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
    return dense, None, dense.mean(dim=0)


def principal_components(
    X: np.ndarray | sp.spmatrix,
    n_components: int = 50,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    power_iterations: int = 3,
) -> np.ndarray:
    """The cells' coordinates on the leading principal components of ``X``.

    Randomised SVD of the centred matrix (Halko et al. 2011) with the centring applied
    implicitly, so a sparse ``X`` is only ever multiplied, never densified. With no more
    features than ``n_components``, the centred features themselves are returned.

    Parameters
    ----------
    X
        Cells x features (dense or sparse).
    n_components
        Components to keep.
    device
        Where to compute.
    seed
        Seed of the random projection.
    power_iterations
        Subspace iterations (more: closer to exact for slowly decaying spectra).

    Returns
    -------
    ``float32`` array, cells x components.
    """
    dev = resolve_device(device)
    n, g = X.shape
    if g <= n_components or n <= n_components + 1:
        # as few features as components: the centred features themselves (n x g, O(n k))
        if not sp.issparse(X):
            dense = np.asarray(X, dtype=np.float32)
            return dense - dense.mean(axis=0)
        csr = sp.csr_matrix(X, dtype=np.float32)
        dense = np.empty((n, g), dtype=np.float32)
        for start in range(0, n, BLOCK_CELLS):
            dense[start : start + BLOCK_CELLS] = csr[start : start + BLOCK_CELLS].toarray()
        return dense - dense.mean(axis=0)
    A, At, mean = _to_device(X, dev)

    def times(M: torch.Tensor) -> torch.Tensor:  # (A - 1 mean^T) M
        left = A @ M if At is None else A.weighted_sum(M)
        return left - mean @ M

    def times_t(M: torch.Tensor) -> torch.Tensor:  # (A - 1 mean^T)^T M
        left = A.T @ M if At is None else At.weighted_sum(M)
        return left - mean[:, None] * M.sum(dim=0)

    width = min(g, n_components + 10)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    omega = torch.randn(g, width, generator=generator).to(dev)
    Q, _ = torch.linalg.qr(times(omega))
    for _ in range(power_iterations):
        Q, _ = torch.linalg.qr(times_t(Q))
        Q, _ = torch.linalg.qr(times(Q))
    B = times_t(Q).T  # width x g
    U, S, _ = torch.linalg.svd(B, full_matrices=False)
    scores = (Q @ U[:, :n_components]) * S[:n_components]
    return scores.cpu().numpy()
