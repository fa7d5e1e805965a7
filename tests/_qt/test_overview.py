"""Large sections: an overview image when zoomed out, the real points of the view when in.

The threshold is lowered to a few hundred cells so that real viewers with the small
synthetic tissue exercise exactly what a section of a million cells does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from napari.layers import Image
from napari.utils._proxies import ReadOnlyWrapper
from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)

from napari_annotatability import datasets
from napari_annotatability._napari.layers import cells_layer
from napari_annotatability._napari.viewer_sync import result_layer
from napari_annotatability._qt.overview import OVERVIEW_ROLE, install_overview
from napari_annotatability.core.raster import in_rectangle, splat

LIMIT = 150


@dataclass
class MouseEvent:
    """What napari's mouse callbacks read of a vispy mouse event."""

    type: str
    position: tuple
    is_dragging: bool = False
    modifiers: list = field(default_factory=list)
    pos: np.ndarray = field(default_factory=lambda: np.zeros(2))
    view_direction: list | None = None
    up_direction: list | None = None
    dims_displayed: list = field(default_factory=lambda: [0, 1])


def drag(layer, start, end, modifiers=()) -> None:
    """A press at ``start``, a move and a release at ``end`` (world coordinates)."""

    def event(kind, position, dragging):
        return ReadOnlyWrapper(
            MouseEvent(kind, tuple(position), dragging, list(modifiers)), exceptions=("handled",)
        )

    mouse_press_callbacks(layer, event("mouse_press", start, False))
    mouse_move_callbacks(layer, event("mouse_move", end, True))
    mouse_release_callbacks(layer, event("mouse_release", end, False))


@pytest.fixture
def lod_viewer(trained_viewer):
    """The trained synthetic viewer (600 cells) with a level of detail of 150 points."""
    return trained_viewer, install_overview(trained_viewer, max_points=LIMIT)


def zoom_on(viewer, layer, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre the camera on the first cell and zoom until about ``cells`` are in view."""
    positions = np.asarray(layer.data)
    camera = viewer.scene.camera
    camera.center = tuple(positions[0])
    height, width = viewer.canvas.size
    span = np.ptp(positions, axis=0)
    side = np.sqrt(cells / len(positions) * span[0] * span[1])
    camera.zoom = min(height, width) / side
    half = np.asarray(viewer.canvas.size) / (2 * camera.zoom)
    return positions[0] - half, positions[0] + half


def drawn(layer) -> np.ndarray:
    """Rows of ``layer`` that napari draws now."""
    return np.sort(np.asarray(layer._view_indices))


def test_a_large_layer_shows_its_overview_when_zoomed_out(lod_viewer):
    viewer, lod = lod_viewer
    viewer.reset_view()
    flags = result_layer(viewer, viewer.layers["cells"], "flags")
    image = lod.overview_of(flags)
    assert isinstance(image, Image) and image.metadata["role"] == OVERVIEW_ROLE
    # just below its layer, shown instead of its points
    assert viewer.layers.index(image) == viewer.layers.index(flags) - 1
    assert lod.is_overview(flags) and image.visible
    assert drawn(flags).size == 0
    # the image holds each cell's own colour at the cell's pixel (up to overlaps)
    raster = splat(np.asarray(flags.data), flags.face_color, size=float(np.median(flags.size)))
    np.testing.assert_array_equal(image.data, raster.image)
    world = np.asarray(image.data_to_world((0, 0)))
    np.testing.assert_allclose(world, raster.origin)
    # hidden layers keep theirs hidden
    confidence = result_layer(viewer, viewer.layers["cells"], "confidence")
    assert not confidence.visible and not lod.overview_of(confidence).visible


def test_zoomed_in_the_cells_of_the_view_are_real_points(lod_viewer):
    viewer, lod = lod_viewer
    flags = result_layer(viewer, viewer.layers["cells"], "flags")
    lo, hi = zoom_on(viewer, flags, cells=40)
    assert not lod.is_overview(flags)
    assert not lod.overview_of(flags).visible
    in_view = np.flatnonzero(in_rectangle(np.asarray(flags.data), lo, hi))
    rows = drawn(flags)
    assert 0 < rows.size <= LIMIT
    assert set(in_view) <= set(rows)  # every cell of the view is drawn, and a margin
    # hover: the cell under the cursor is reported, as for any points layer
    cell = in_view[len(in_view) // 2]
    assert flags.get_value(flags.data[cell], world=True) == cell
    # zooming out again goes back to the overview
    viewer.reset_view()
    assert lod.is_overview(flags) and drawn(flags).size == 0


def test_small_layers_are_left_alone(synthetic_viewer):
    lod = install_overview(synthetic_viewer)  # the default limit: far above 600 cells
    cells = synthetic_viewer.layers["cells"]
    assert lod.overview_of(cells) is None
    assert drawn(cells).size == len(cells.data)
    assert not any(layer.metadata.get("role") == OVERVIEW_ROLE for layer in synthetic_viewer.layers)


def test_a_box_drawn_on_the_overview_selects_the_cells_inside(lod_viewer, qtbot):
    viewer, lod = lod_viewer
    viewer.reset_view()
    flags = result_layer(viewer, viewer.layers["cells"], "flags")
    viewer.layers.selection.active = flags
    flags.mode = "select"
    assert lod.is_overview(flags)
    positions = np.asarray(flags.data)
    lo, hi = np.quantile(positions, 0.3, axis=0), np.quantile(positions, 0.6, axis=0)
    drag(flags, lo, hi)
    inside = np.flatnonzero(in_rectangle(positions, lo, hi))
    assert inside.size > 0
    assert flags.selected_data == set(inside.tolist())
    # shift adds and removes, as napari's own box does
    drag(flags, lo, (lo + hi) / 2, modifiers=["Shift"])
    half = set(np.flatnonzero(in_rectangle(positions, lo, (lo + hi) / 2)).tolist())
    assert flags.selected_data == set(inside.tolist()) ^ half
    # the selection is painted on the overview
    image = lod.overview_of(flags)
    qtbot.waitUntil(lambda: not lod.overviews[id(flags)].stale)
    chosen = next(iter(flags.selected_data))
    pixel = np.rint(np.asarray(image.world_to_data(positions[chosen]))).astype(int)
    assert tuple(image.data[pixel[0], pixel[1]]) == (0, 153, 255, 255)


def test_the_overview_follows_colours_visibility_and_removal(lod_viewer, qtbot):
    viewer, lod = lod_viewer
    viewer.reset_view()
    source = viewer.layers["cells"]
    flags = result_layer(viewer, source, "flags")
    confidence = result_layer(viewer, source, "confidence")
    # switching the shown result switches the overviews
    flags.visible, confidence.visible = False, True
    assert not lod.overview_of(flags).visible and lod.overview_of(confidence).visible
    # new colours are painted (once the change is complete)
    before = lod.overview_of(confidence).data.copy()
    confidence.face_color = "red"
    qtbot.waitUntil(lambda: not lod.overviews[id(confidence)].stale)
    after = lod.overview_of(confidence).data
    assert not np.array_equal(before, after)
    painted = after[after[..., 3] > 0]
    assert np.all(painted == (255, 0, 0, 255))
    # moving the layer keeps its overview just below it
    viewer.layers.move(viewer.layers.index(confidence), len(viewer.layers))
    assert viewer.layers.index(lod.overview_of(confidence)) == viewer.layers.index(confidence) - 1
    # removing the layer removes its overview
    image = lod.overview_of(confidence)
    viewer.layers.remove(confidence)
    assert image not in viewer.layers and lod.overview_of(confidence) is None
    # removing an overview by hand draws its layer's points again
    viewer.layers.remove(lod.overview_of(flags))
    assert lod.overview_of(flags) is None and flags.shown.all()


def test_results_of_a_large_section_are_drawn_as_overviews(make_napari_viewer):
    """The real path: results shown on a layer above the limit get overviews too."""
    from napari_annotatability import api
    from napari_annotatability._napari.viewer_sync import show_results

    viewer = make_napari_viewer()
    lod = install_overview(viewer, max_points=LIMIT)
    adata = datasets.synthetic_tissue(n_cells=400, n_genes=40, n_classes=3, seed=1)
    data, kwargs, _ = cells_layer(adata, "label", name="cells")
    source = viewer.add_points(data, **kwargs)
    assert lod.is_overview(source)
    api.annotate(adata, "label", epochs=5, suggest=False, calibrate=False)
    layers = show_results(viewer, source)
    for role, layer in layers.items():
        if len(layer.data) > LIMIT:
            assert lod.overview_of(layer) is not None, role
            assert lod.overview_of(layer).visible == layer.visible
