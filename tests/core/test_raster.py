"""Cells painted into an overview image, and the cells inside a view."""

from __future__ import annotations

import numpy as np

from napari_annotatability.core.raster import (
    MAX_STAMP,
    in_rectangle,
    pixel_of,
    raster_grid,
    splat,
)


def test_each_cell_is_painted_at_its_pixel_in_its_colour():
    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 100, (50, 2))
    colours = rng.integers(0, 256, (50, 4), dtype=np.uint8)
    colours[:, 3] = 255
    raster = splat(positions, colours, pixels=4096)  # fine enough that no two cells share a pixel
    centres = pixel_of(positions, raster.origin, raster.pixel)
    assert len({tuple(c) for c in centres}) == 50
    np.testing.assert_array_equal(raster.image[centres[:, 0], centres[:, 1]], colours)
    # everything else is transparent
    assert (raster.image[..., 3] > 0).sum() == 50
    # the image covers the cells: first and last pixels hold the extreme cells
    np.testing.assert_allclose(raster.origin, positions.min(axis=0))
    assert np.all(centres.max(axis=0) == np.asarray(raster.image.shape[:2]) - 1)


def test_float_colours_and_later_cells_on_top():
    positions = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 10.0]])
    colours = np.array([[1, 0, 0, 1], [0, 0, 1, 1], [0, 1, 0, 1]], dtype=float)
    image = splat(positions, colours, pixels=11).image
    assert tuple(image[0, 0]) == (0, 0, 255, 255)  # the second cell, drawn later
    assert tuple(image[-1, -1]) == (0, 255, 0, 255)


def test_a_cell_covers_about_its_size_in_pixels():
    # three cells 100 apart: the pixel is at its coarsest limit, 8 x 100 / 100 = 8
    positions = np.array([[0.0, 0.0], [100.0, 100.0], [48.0, 48.0]])
    colours = np.full((3, 4), 255, dtype=np.uint8)
    small = splat(positions, colours, size=0.0, pixels=101)
    assert small.pixel == 8.0
    assert (small.image[..., 3] > 0).sum() == 3
    large = splat(positions, colours, size=24.0, pixels=101)  # 3 pixels across
    row, column = pixel_of(positions[2:], large.origin, large.pixel)[0]
    assert (large.image[row - 1 : row + 2, column - 1 : column + 2, 3] > 0).all()
    assert (large.image[..., 3] > 0).sum() == 9 + 4 + 4  # two squares cut by the edges
    huge = splat(positions, colours, size=1e6, pixels=101)
    assert (huge.image[..., 3] > 0).sum() <= 3 * MAX_STAMP**2


def test_the_pixel_follows_the_cells_spacing_within_limits():
    rng = np.random.default_rng(1)
    dense = rng.uniform(0, 1000, (100_000, 2))  # spacing ~3: at the finest limit
    _, pixel, shape = raster_grid(dense, pixels=256)
    assert max(shape) == 256 and np.isclose(pixel, 1000 / 255, rtol=1e-2)
    middling = rng.uniform(0, 1000, (10_000, 2))  # spacing ~10: about a cell a pixel
    _, pixel, shape = raster_grid(middling, pixels=256)
    assert 9 < pixel < 11 and 90 < max(shape) < 112
    sparse = rng.uniform(0, 1000, (100, 2))  # spacing ~100: at the coarsest limit
    _, pixel, shape = raster_grid(sparse, pixels=2048)
    assert np.isclose(pixel, 8 * np.ptp(sparse, axis=0).max() / 2047)
    # cells all at one place
    _, pixel, shape = raster_grid(np.zeros((3, 2)))
    assert shape == (1, 1) and pixel == 1.0


def test_in_rectangle_is_inclusive_and_per_axis():
    positions = np.array([[0, 0], [5, 5], [10, 10], [5, 11], [-1, 5]], dtype=float)
    inside = in_rectangle(positions, np.array([0, 0]), np.array([10, 10]))
    np.testing.assert_array_equal(inside, [True, True, True, False, False])
