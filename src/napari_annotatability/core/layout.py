"""Sections side by side: shifts that keep separate tissue sections from overlapping."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Gap between sections laid side by side, as a fraction of the widest section.
SECTION_GAP = 0.05


def side_by_side(
    boxes: Sequence[tuple[np.ndarray, np.ndarray]], gap: float = SECTION_GAP
) -> list[np.ndarray]:
    """(row, column) shifts that lay boxes left to right, tops aligned, without overlap.

    Parameters
    ----------
    boxes
        Each section's (low, high) corners as (row, column), in its own frame.
    gap
        Space between neighbours, as a fraction of the widest box.

    Returns
    -------
    One shift per box; the first box stays where it is.
    """
    if not boxes:
        return []
    widths = [float(high[1] - low[1]) for low, high in boxes]
    space = gap * max(max(widths), 1e-9)
    top = float(boxes[0][0][0])
    shifts, right = [], None
    for low, high in boxes:
        shift = np.zeros(2)
        if right is not None:
            shift[:] = (top - low[0], right + space - low[1])
        right = float(high[1] + shift[1])
        shifts.append(shift)
    return shifts


#: Above this fraction of cells whose nearest cell is of another group, groups sharing a
#: frame are separate sections drawn on top of each other, not parts of one section.
OVERLAID_FRACTION = 0.25


def overlaid(coords: np.ndarray, groups: np.ndarray) -> bool:
    """Whether groups of cells lie on top of each other (separate sections in one frame).

    Parts of one section (anatomical regions, fields of view) touch only along their
    borders: few cells have a nearest neighbour of another group. Sections placed in the
    same frame mix everywhere: about half do (for two groups).

    Parameters
    ----------
    coords
        ``(n, 2)`` positions.
    groups
        ``(n,)`` group of each cell.
    """
    from scipy.spatial import cKDTree

    if len(coords) < 2 or len(np.unique(groups)) < 2:
        return False
    _, nearest = cKDTree(coords).query(coords, k=2)
    mixed = float(np.mean(groups[nearest[:, 1]] != groups))
    return mixed > OVERLAID_FRACTION
