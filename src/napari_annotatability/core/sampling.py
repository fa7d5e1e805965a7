"""How each epoch draws its cells: class-balanced or shuffled, and how many steps it takes."""

from __future__ import annotations

import numpy as np
import torch


def class_balanced_probabilities(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-cell sampling probability of the weighted sampler: ``∝ 1 / count(class)``.

    Parameters
    ----------
    codes
        Class code of each cell.
    n_classes
        Number of classes.

    Returns
    -------
    Probabilities summing to one (O(n), no loop over cells).
    """
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    weights = 1.0 / counts[codes]
    return weights / weights.sum()


class EpochSampler:
    """Draws the cell order of each epoch on the device (METHOD 1.4).

    With ``weighted=True``, ``n`` draws with replacement, cell ``i`` with probability
    ``∝ 1 / count(class of i)``: equivalently a uniformly drawn (present) class, then a
    uniformly drawn cell of that class, which is O(n) to set up and to draw.
    With ``weighted=False``, a random permutation.
    """

    def __init__(
        self, codes: torch.Tensor, n_classes: int, *, weighted: bool, generator: torch.Generator
    ) -> None:
        self.n = codes.numel()
        self.weighted = weighted
        self.generator = generator
        device = codes.device
        if weighted:
            counts = torch.bincount(codes, minlength=n_classes)
            self._order = torch.argsort(codes, stable=True)
            self._starts = torch.cumsum(counts, 0) - counts
            self._counts = counts
            self._present = torch.nonzero(counts > 0).flatten()
        self._device = device

    def draw(self, size: int | None = None) -> torch.Tensor:
        """Return the row indices of one epoch, in batch order.

        ``size`` (default ``n``) draws more: with the weighted sampler, ``size`` draws
        with replacement; without it, consecutive random permutations cut to ``size``.
        """
        gen, dev = self.generator, self._device
        size = self.n if size is None else size
        if not self.weighted:
            rounds = -(-size // self.n)
            order = [torch.randperm(self.n, generator=gen, device=dev) for _ in range(rounds)]
            return torch.cat(order)[:size]
        pick = torch.randint(len(self._present), (size,), generator=gen, device=dev)
        classes = self._present[pick]
        counts = self._counts[classes]
        within = (torch.rand(size, generator=gen, device=dev) * counts).long()
        within = torch.minimum(within, counts - 1)
        return self._order[self._starts[classes] + within]


def epoch_draws(n_cells: int, batch_size: int, min_steps: int | None) -> int:
    """Cells drawn per epoch: ``n``, or enough for ``min_steps`` optimiser steps.

    The reference draws ``n`` cells per epoch, so a 260-spot section gets 2 optimiser
    steps an epoch and is barely trained after 50 epochs. With ``min_steps`` an epoch
    draws at least ``min_steps * batch_size`` cells (the same sampler, more draws), so
    small data are trained as much as a section of ``min_steps`` batches; data with
    more cells than that are unchanged.
    """
    if min_steps is None:
        return n_cells
    return max(n_cells, min_steps * batch_size)


def sampling_seed(seed: int) -> int:
    """The seed of the epoch sampler, derived from the run's ``seed``.

    The initial weights are drawn from ``seed`` itself; seeding the sampler with the
    same number would replay the very random numbers that made the weights as the
    cell order, tying the order to the initialisation. A derived stream keeps the
    two independent while one ``seed`` still fixes the whole run.
    """
    return int(np.random.SeedSequence([seed, 1]).generate_state(1, dtype=np.uint64)[0] >> 1)
