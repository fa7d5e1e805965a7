"""The tissue neighbourhood shown while reviewing and in the evidence view."""

import numpy as np

from napari_annotatability.core.review import Neighbourhood


def test_neighbours_of_one_section_are_its_nearest_cells_by_obs_position():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (300, 2))
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, 300)]
    section = np.flatnonzero(rng.random(300) < 0.5)  # obs positions of one section's cells
    tissue = Neighbourhood(xy[section], k=8, positions=section)
    cell = int(section[7])
    distances = np.linalg.norm(xy[section] - xy[cell], axis=1)
    nearest = section[np.argsort(distances)[1:9]]
    np.testing.assert_array_equal(np.sort(tissue.of(cell)), np.sort(nearest))
    counts = dict(tissue.label_counts(cell, labels))
    assert counts == {name: int((labels[nearest] == name).sum()) for name in set(labels[nearest])}
    around = tissue.within(cell, 20.0)
    np.testing.assert_array_equal(np.sort(around), np.sort(section[distances <= 20.0]))
    np.testing.assert_array_equal(tissue.coordinates(around), xy[around])
    # a cell of another section, and one past the last position, have no neighbours
    other = int(np.setdiff1d(np.arange(300), section)[0])
    assert tissue.row(other) == -1 and tissue.row(10_000) == -1
    assert tissue.of(other).size == 0 and tissue.within(other, 20.0).size == 0


def test_a_single_cell_has_no_neighbours():
    tissue = Neighbourhood(np.zeros((1, 2)), k=6)
    assert tissue.k == 0 and tissue.of(0).size == 0 and tissue.label_counts(0, ["a"]) == []
