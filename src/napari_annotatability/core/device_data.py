"""Input data on the training device: the device to use, and a matrix kept there.

Dense input lives on the device as one tensor; sparse input as its CSR parts, from which
each batch is cut (and multiplied sparse, or densified when dense enough).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.network import (
    CSRParts,
    SparseBatch,
)

#: Cells per forward pass when recording probabilities (bounded device memory).
RECORD_BATCH_SIZE = 8192
#: Above this fraction of non-zeros a sparse batch is multiplied dense (faster there).
SPARSE_DENSITY_LIMIT = 0.4


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:i"`` into a usable device.

    ``"auto"`` picks the first CUDA device when one is available, else the CPU.
    Asking for CUDA where there is none raises a clear error.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        try:
            dev = torch.device(name)
        except RuntimeError:
            dev = None
        index = 0 if dev is None or dev.index is None else dev.index
        if dev is None or index >= n_gpus:
            raise AnnotatabilityInputError(
                f"device={device!r} is not available: this machine has {n_gpus} CUDA "
                "device(s). Use device='auto' or 'cpu'."
            )
        return torch.device("cuda", index)
    raise AnnotatabilityInputError(
        f"device={device!r} is not understood; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'."
    )


def available_devices() -> list[str]:
    """Devices this machine offers: ``"auto"``, ``"cpu"`` and each CUDA device."""
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["auto", "cpu", *(f"cuda:{i}" for i in range(n_gpus))]


class DeviceMatrix:
    """The cells x features matrix on the device, cut into batches there.

    Dense input is copied to the device once. Sparse CSR input stays sparse: on the
    CPU each batch is cut with scipy; on CUDA the CSR arrays live on the device and
    rows are gathered with vectorised index arithmetic (``gather_in_torch``, which
    can also be forced on the CPU, e.g. to test that path).
    """

    def __init__(
        self,
        X: np.ndarray | sp.csr_matrix,
        device: torch.device,
        *,
        gather_in_torch: bool | None = None,
    ) -> None:
        self.device = device
        self.n_rows, self.n_cols = X.shape
        self.sparse = sp.issparse(X)
        if not self.sparse:
            self._dense = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
            return
        self._csr = sp.csr_matrix(X, dtype=np.float32)
        self._multiply_dense = multiplied_dense(self._csr)
        self._gather_in_torch = device.type != "cpu" if gather_in_torch is None else gather_in_torch
        if self._gather_in_torch:
            self._crow = torch.as_tensor(self._csr.indptr.astype(np.int64), device=device)
            self._col = torch.as_tensor(self._csr.indices.astype(np.int64), device=device)
            self._val = torch.as_tensor(self._csr.data, device=device)

    def rows(self, index: torch.Tensor, *, for_training: bool) -> torch.Tensor | SparseBatch:
        """Return the rows ``index`` as a network input batch."""
        if not self.sparse:
            return self._dense.index_select(0, index)
        if self._gather_in_torch:
            return self._gather(index, for_training)
        return self._from_scipy(self._csr[index.numpy()], for_training)

    def batches(
        self, order: torch.Tensor, batch_size: int, *, for_training: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | SparseBatch]]:
        """``(index, rows)`` for consecutive batches of ``order``.

        Sparse input multiplied dense on the CPU is cut and densified a block of batches
        at a time (one scipy row gather and one densify per :data:`RECORD_BATCH_SIZE`
        rows instead of per batch: the per-batch overhead was most of the gap to dense
        input); every other input is cut batch by batch (:meth:`rows`). The batches are
        the same either way.
        """
        n = order.numel()
        if not (self.sparse and self._multiply_dense and not self._gather_in_torch):
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                yield index, self.rows(index, for_training=for_training)
            return
        block_rows = max(batch_size, RECORD_BATCH_SIZE // batch_size * batch_size)
        for block_start in range(0, n, block_rows):
            block_index = order[block_start : block_start + block_rows]
            dense = torch.from_numpy(self._csr[block_index.numpy()].toarray())
            for start in range(0, block_index.numel(), batch_size):
                yield block_index[start : start + batch_size], dense[start : start + batch_size]

    def mean_squared_norm(self) -> float:
        """``mean_i |x_i|^2`` over the cells (float64 sums; dense input in blocks)."""
        if self.sparse:
            values = self._csr.data.astype(np.float64)
            return float(values @ values) / max(1, self.n_rows)
        total = 0.0
        for start in range(0, self.n_rows, RECORD_BATCH_SIZE):
            block = self._dense[start : start + RECORD_BATCH_SIZE].double()
            total += float((block * block).sum())
        return total / max(1, self.n_rows)

    def slice(self, start: int, stop: int) -> torch.Tensor | SparseBatch:
        """Return the consecutive rows ``start:stop`` for inference."""
        if not self.sparse:
            return self._dense[start:stop]
        if self._gather_in_torch:
            return self._gather(torch.arange(start, stop, device=self.device), False)
        return self._from_scipy(csr_rows(self._csr, start, stop), False)

    def _from_scipy(self, block: sp.csr_matrix, for_training: bool) -> torch.Tensor | SparseBatch:
        if self._multiply_dense:
            return torch.from_numpy(block.toarray())
        transposed = csr_parts(block.tocsc()) if for_training else None
        return SparseBatch(csr_parts(block), block.shape, transposed)

    def _gather(self, index: torch.Tensor, for_training: bool) -> torch.Tensor | SparseBatch:
        """Cut rows from the device CSR arrays with vectorised index arithmetic."""
        starts = self._crow[index]
        lengths = self._crow[index + 1] - starts
        new_starts = torch.cumsum(lengths, 0) - lengths
        total = int(lengths.sum())
        offsets = torch.repeat_interleave(starts - new_starts, lengths, output_size=total)
        offsets += torch.arange(total, device=self.device)
        cols, vals = self._col[offsets], self._val[offsets]
        n_rows = index.numel()
        row_ids = torch.repeat_interleave(
            torch.arange(n_rows, device=self.device), lengths, output_size=total
        )
        if self._multiply_dense:
            dense = torch.zeros(n_rows, self.n_cols, device=self.device)
            dense[row_ids, cols] = vals
            return dense
        transposed = None
        if for_training:
            order = torch.argsort(cols, stable=True)
            per_col = torch.bincount(cols, minlength=self.n_cols)
            transposed = CSRParts(torch.cumsum(per_col, 0) - per_col, row_ids[order], vals[order])
        return SparseBatch(CSRParts(new_starts, cols, vals), (n_rows, self.n_cols), transposed)


def multiplied_dense(matrix: sp.spmatrix) -> bool:
    """Whether a sparse matrix's products run on densified blocks of rows.

    True above :data:`SPARSE_DENSITY_LIMIT` non-zeros, where that is faster than sparse.
    """
    n_rows, n_cols = matrix.shape
    return matrix.nnz > SPARSE_DENSITY_LIMIT * max(1, n_rows * n_cols)


def csr_rows(csr: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows ``start:stop`` of ``csr`` as a CSR sharing its arrays (scipy's slicing copies)."""
    indptr = csr.indptr
    first, last = indptr[start], indptr[stop]
    return sp.csr_matrix(
        (csr.data[first:last], csr.indices[first:last], indptr[start : stop + 1] - first),
        shape=(stop - start, csr.shape[1]),
        copy=False,
    )


def csr_parts(matrix: sp.csr_matrix | sp.csc_matrix) -> CSRParts:
    """Compressed rows (of a CSR) or compressed rows of the transpose (of a CSC)."""
    starts, indices = matrix.indptr[:-1], matrix.indices
    if starts.dtype != indices.dtype:
        starts, indices = starts.astype(np.int64), indices.astype(np.int64)
    return CSRParts(
        torch.from_numpy(starts), torch.from_numpy(indices), torch.from_numpy(matrix.data)
    )
