"""Cells drawn into an image: the overview of a whole section at screen resolution.

A section of a million cells is drawn by software OpenGL in seconds as points but in
milliseconds as one image of a few million pixels. :func:`splat` paints each cell's
colour into the pixels it covers (later cells over earlier ones, as points are drawn);
:func:`in_rectangle` finds the cells inside a view, so that only those need be points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Pixels along the longer side of an overview image.
OVERVIEW_PIXELS = 2048
#: Largest square (in pixels) one cell is painted as.
MAX_STAMP = 5


@dataclass(frozen=True)
class Raster:
    """An RGBA image of cells and where it lies in their coordinates.

    Attributes
    ----------
    image
        ``(rows, columns, 4)`` uint8; transparent where there is no cell.
    origin
        Coordinates (dimension 0, dimension 1) of the centre of pixel ``[0, 0]``.
    pixel
        Side of one pixel in the cells' coordinates.
    """

    image: np.ndarray
    origin: np.ndarray
    pixel: float


def raster_grid(
    positions: np.ndarray, pixels: int = OVERVIEW_PIXELS
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Origin, pixel side and shape of an image of ``positions`` (n x 2).

    A pixel is about the mean spacing of the cells (so that cells cover the image as
    they cover the tissue), at most ``pixels`` and at least ``pixels / 8`` along the
    longer side.
    """
    positions = np.asarray(positions, dtype=np.float64)
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    extent = hi - lo
    span = float(np.max(extent))
    if span <= 0:
        return lo, 1.0, (1, 1)
    spacing = np.sqrt(float(np.prod(np.maximum(extent, span / pixels))) / len(positions))
    pixel = float(np.clip(spacing, span / (pixels - 1), 8 * span / (pixels - 1)))
    shape = np.rint(extent / pixel).astype(int) + 1  # the farthest cell's pixel, included
    return lo, pixel, (int(shape[0]), int(shape[1]))


def _rgba32(colors: np.ndarray) -> np.ndarray:
    """``(n, 4)`` RGBA (floats in [0, 1] or uint8) as one uint32 per colour."""
    colors = np.asarray(colors)
    if colors.dtype != np.uint8:
        colors = np.clip(np.rint(colors * 255), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(colors).view(np.uint32).ravel()


def paint(image: np.ndarray, centres: np.ndarray, colors: np.ndarray, stamp: int = 1) -> None:
    """Paint squares of ``stamp`` pixels around pixel ``centres`` (n x 2) into ``image``.

    Later cells go on top; each cell's own centre pixel is painted last, so that no
    neighbour's square hides a cell entirely.
    """
    rows_n, columns_n = image.shape[:2]
    flat = image.reshape(-1, 4).view(np.uint32).ravel()
    packed = _rgba32(colors)
    offsets = np.arange(stamp) - (stamp - 1) // 2
    pairs = sorted(
        ((dr, dc) for dr in offsets for dc in offsets), key=lambda o: -abs(o[0]) - abs(o[1])
    )
    for dr, dc in pairs:
        rows = np.clip(centres[:, 0] + dr, 0, rows_n - 1)
        columns = np.clip(centres[:, 1] + dc, 0, columns_n - 1)
        flat[rows * columns_n + columns] = packed


def splat(
    positions: np.ndarray,
    colors: np.ndarray,
    *,
    size: float = 0.0,
    pixels: int = OVERVIEW_PIXELS,
) -> Raster:
    """Paint cells of colour ``colors`` at ``positions`` into an RGBA image.

    Parameters
    ----------
    positions
        ``(n, 2)`` coordinates (as a Points layer's data).
    colors
        ``(n, 4)`` RGBA, floats in [0, 1] or uint8.
    size
        Diameter of a cell in the same units; each cell covers a square of about that
        many pixels (at least one, at most :data:`MAX_STAMP`).
    pixels
        Most pixels along the image's longer side.

    Returns
    -------
    The image; where cells overlap, the later one is on top, as napari draws points.
    """
    positions = np.asarray(positions, dtype=np.float64)
    origin, pixel, shape = raster_grid(positions, pixels)
    image = np.zeros((*shape, 4), dtype=np.uint8)
    paint(
        image,
        pixel_of(positions, origin, pixel),
        colors,
        int(np.clip(round(size / pixel), 1, MAX_STAMP)),
    )
    return Raster(image=image, origin=origin, pixel=pixel)


def pixel_of(positions: np.ndarray, origin: np.ndarray, pixel: float) -> np.ndarray:
    """Row and column of the pixel of each of ``positions`` (n x 2)."""
    return np.rint((np.asarray(positions, dtype=np.float64) - origin) / pixel).astype(np.int64)


def in_rectangle(positions: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Boolean mask of the ``(n, 2)`` positions inside the box ``lo``-``hi`` (inclusive)."""
    positions = np.asarray(positions)
    return (
        (positions[:, 0] >= lo[0])
        & (positions[:, 0] <= hi[0])
        & (positions[:, 1] >= lo[1])
        & (positions[:, 1] <= hi[1])
    )
