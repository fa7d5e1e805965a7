"""The review queue: flagged cells, most suspicious first, and their neighbourhood."""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.spatial import cKDTree

from napari_annotatability.core.errors import AnnotatabilityInputError


class ReviewQueue:
    """Cells to review one by one, in ascending order of a key.

    Parameters
    ----------
    positions
        obs positions of the cells to review.
    order_by
        One value per cell (same order); the queue is sorted by it ascending, ties by
        position, NaN last: e.g. the confidence (least confident first) or minus the
        mislabel score (most likely wrong first).
    """

    def __init__(self, positions: np.ndarray, order_by: np.ndarray) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        order_by = np.asarray(order_by, dtype=float)
        if positions.size == 0:
            raise AnnotatabilityInputError("No flagged cells to review.")
        order = np.lexsort((positions, np.nan_to_num(order_by, nan=np.inf)))
        self.positions = positions[order]
        self.index = 0

    def __len__(self) -> int:
        return int(self.positions.size)

    @property
    def current(self) -> int:
        """obs position of the cell under review."""
        return int(self.positions[self.index])

    def next(self) -> int:
        """Move to the next cell (stays on the last one) and return it."""
        self.index = min(self.index + 1, len(self) - 1)
        return self.current

    def previous(self) -> int:
        """Move to the previous cell (stays on the first one) and return it."""
        self.index = max(self.index - 1, 0)
        return self.current

    def next_unreviewed(self, reviewed: np.ndarray) -> int:
        """Move to the next cell not yet reviewed (``reviewed``: one bool per obs row).

        Stays put when every later cell is reviewed.
        """
        later = np.flatnonzero(~reviewed[self.positions[self.index + 1 :]])
        if later.size:
            self.index += 1 + int(later[0])
        return self.current


class Neighbourhood:
    """The cells nearest to each cell on the tissue, for showing their labels.

    Parameters
    ----------
    coords
        ``(m, 2)`` tissue positions of the cells at obs ``positions``.
    k
        Neighbours per cell (the cell itself excluded).
    positions
        obs positions of the rows of ``coords`` (default: every cell, in obs order): the
        cells of one section, say. Cells without a row have no neighbours.
    """

    def __init__(self, coords: np.ndarray, k: int = 6, positions: np.ndarray | None = None) -> None:
        self.coords = np.asarray(coords, dtype=float)
        n = len(self.coords)
        self.k = int(min(k, max(n - 1, 0)))
        self.positions = np.arange(n) if positions is None else np.asarray(positions, np.int64)
        self._row = np.full(int(self.positions.max(initial=-1)) + 1, -1, dtype=np.int64)
        self._row[self.positions] = np.arange(n)
        self._tree = cKDTree(self.coords)

    def row(self, position: int) -> int:
        """Row of the cell at obs ``position`` in ``coords`` (-1: it has none)."""
        return int(self._row[position]) if 0 <= position < len(self._row) else -1

    def coordinates(self, positions: np.ndarray) -> np.ndarray:
        """Tissue coordinates of the cells at obs ``positions`` (all given coordinates)."""
        return self.coords[self._row[np.asarray(positions, dtype=np.int64)]]

    def of(self, position: int) -> np.ndarray:
        """obs positions of the ``k`` cells nearest to the cell at ``position``."""
        row = self.row(position)
        if self.k == 0 or row < 0:
            return np.zeros(0, dtype=np.int64)
        _, found = self._tree.query(self.coords[row], k=self.k + 1)
        found = np.atleast_1d(found)
        return self.positions[found[found != row][: self.k]]

    def label_counts(self, position: int, labels: np.ndarray) -> list[tuple[str, int]]:
        """Labels (indexed by obs position) of the cell's neighbours, commonest first."""
        counts = Counter(str(labels[p]) for p in self.of(position))
        return counts.most_common()

    def within(self, position: int, radius: float) -> np.ndarray:
        """obs positions of the cells within ``radius`` of the cell (itself included)."""
        row = self.row(position)
        if row < 0:
            return np.zeros(0, dtype=np.int64)
        found = self._tree.query_ball_point(self.coords[row], radius)
        return self.positions[np.asarray(found, dtype=np.int64)]
