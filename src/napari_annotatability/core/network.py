"""The Annotatability network: a fully connected classifier of depth 3, 4 or 5.

Widths follow METHOD section 1.2: ``[g, g//2, g//4, C]`` for depth 3, one more
halving per extra layer, ReLU after every hidden layer, log-softmax at the output,
PyTorch's default ``nn.Linear`` initialisation.

The first layer accepts a dense batch or a sparse CSR batch. For sparse input it
multiplies only the non-zeros, in the forward pass and for the weight gradient,
because the first layer holds most of the network's arithmetic.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from napari_annotatability.core.errors import AnnotatabilityInputError

SUPPORTED_DEPTHS = (3, 4, 5)


def layer_widths(
    n_features: int, n_classes: int, depth: int = 3, min_width: int | None = None
) -> list[int]:
    """Return the layer widths ``[g, g//2, ..., C]`` of the network.

    Parameters
    ----------
    n_features
        Number of input features ``g``.
    n_classes
        Number of classes ``C``.
    depth
        3, 4 or 5 linear layers.
    min_width
        Extension: raise every hidden width below this to it. ``None`` (the
        reference behaviour) raises an error for a hidden width below 1 instead.

    Returns
    -------
    Widths from the input to the output.
    """
    if depth not in SUPPORTED_DEPTHS:
        raise AnnotatabilityInputError(f"depth must be one of {SUPPORTED_DEPTHS}; got {depth!r}.")
    hidden = [n_features // 2**i for i in range(1, depth)]
    if min_width is not None:
        if min_width < 1:
            raise AnnotatabilityInputError(f"min_width must be >= 1; got {min_width}.")
        hidden = [max(w, min_width) for w in hidden]
    elif min(hidden) < 1:
        raise AnnotatabilityInputError(
            f"With {n_features} input feature(s) a depth-{depth} network has hidden widths "
            f"{hidden}, and a width below 1 cannot train. Use a smaller depth, more features, "
            "or min_width=... (CLI: --min-width) to keep every hidden layer at least that wide."
        )
    return [n_features, *hidden, n_classes]


@dataclass(frozen=True)
class CSRParts:
    """Compressed rows: row ``i`` holds ``indices``/``values`` from ``starts[i]`` to the next start.

    ``starts`` and ``indices`` share one integer dtype (as ``embedding_bag`` requires).
    """

    starts: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor

    def weighted_sum(self, table: torch.Tensor) -> torch.Tensor:
        """``M @ table`` for the sparse matrix ``M`` these rows describe (one fused kernel).

        The table is made contiguous first: ``embedding_bag`` reads a column-major table
        (as QR returns) 20 times more slowly.
        """
        return F.embedding_bag(
            self.indices,
            table.contiguous(),
            self.starts,
            mode="sum",
            per_sample_weights=self.values,
        )


@dataclass(frozen=True)
class SparseBatch:
    """A sparse batch of cells: its rows, its shape and, for training, its transpose."""

    rows: CSRParts
    shape: tuple[int, int]
    transposed: CSRParts | None = None

    def to_dense(self) -> torch.Tensor:
        """The batch as a dense tensor (for tests and inspection)."""
        return self.rows.weighted_sum(torch.eye(self.shape[1], device=self.rows.values.device))


class _SparseFirstLayer(torch.autograd.Function):
    """``x @ W + b`` for a sparse batch ``x``; the weight gradient ``x^T @ grad`` is also sparse.

    Both products are weighted sums of table rows (``embedding_bag``), which touch only the
    non-zeros: the forward sums rows of ``W``, the backward sums rows of the output gradient.
    """

    @staticmethod
    def forward(ctx, batch, weight_t, bias):
        ctx.transposed = batch.transposed
        return batch.rows.weighted_sum(weight_t) + bias

    @staticmethod
    def backward(ctx, grad_out):
        return None, ctx.transposed.weighted_sum(grad_out), grad_out.sum(0)


class AnnotatabilityNet(nn.Module):
    """Fully connected classifier returning log-probabilities.

    Parameters
    ----------
    widths
        Layer widths from :func:`layer_widths`.
    """

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.widths = list(widths)
        first = nn.Linear(widths[0], widths[1])
        # Store the first weight transposed (features x hidden), contiguous, so the
        # sparse and dense products read it row-wise; initialised exactly as nn.Linear.
        self.first_weight_t = nn.Parameter(first.weight.detach().t().contiguous())
        self.first_bias = nn.Parameter(first.bias.detach().clone())
        rest: list[nn.Module] = []
        for w_in, w_out in itertools.pairwise(widths[1:]):
            rest += [nn.ReLU(), nn.Linear(w_in, w_out)]
        self.rest = nn.Sequential(*rest)

    def forward(self, x: torch.Tensor | SparseBatch) -> torch.Tensor:
        """Return log-probabilities, one row per cell."""
        if isinstance(x, SparseBatch):
            if torch.is_grad_enabled():
                if x.transposed is None:
                    raise ValueError("A sparse training batch needs its transpose.")
                h = _SparseFirstLayer.apply(x, self.first_weight_t, self.first_bias)
            else:
                h = x.rows.weighted_sum(self.first_weight_t) + self.first_bias
        else:
            h = torch.addmm(self.first_bias, x, self.first_weight_t)
        return torch.log_softmax(self.rest(h), dim=1)


def build_network(
    n_features: int,
    n_classes: int,
    *,
    depth: int = 3,
    min_width: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> AnnotatabilityNet:
    """Build a freshly initialised network, seeded, on ``device``.

    The weights are drawn on the CPU from ``seed`` without touching the global
    random state, so the same seed gives the same network on every device.
    """
    widths = layer_widths(n_features, n_classes, depth, min_width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = AnnotatabilityNet(widths)
    return net.to(device)
