"""The data map: confidence vs variability, linked both ways with the tissue."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from matplotlib.colors import to_hex
from napari.utils.theme import get_theme
from qtpy.QtCore import QCoreApplication, QEvent

from napari_annotatability._napari.selection import selected_positions
from napari_annotatability._qt.data_map import DataMapWidget

pytestmark = pytest.mark.gui


def test_map_plots_every_scored_cell_by_flag(trained_viewer):
    widget = DataMapWidget(trained_viewer)
    adata = trained_viewer.layers["cells"].metadata["adata"]
    assert len(widget._xy) == adata.n_obs
    np.testing.assert_allclose(widget._xy[:, 1], adata.obs["label_conf"])
    np.testing.assert_allclose(widget._xy[:, 0], adata.obs["label_var"])
    legend = [t.get_text() for t in widget.axes.get_legend().get_texts()]
    counts = adata.obs["label_flag"].value_counts()
    for flag, n in counts.items():
        if n:
            assert f"{flag} ({n})" in legend
    assert widget._status.value == f"{adata.n_obs} cells; 0 selected."


def test_region_on_the_map_selects_those_cells_on_the_tissue(trained_viewer):
    viewer = trained_viewer
    widget = DataMapWidget(viewer)
    adata = viewer.layers["cells"].metadata["adata"]
    # everything with confidence below 0.5
    region = np.array([[-1, -1], [2, -1], [2, 0.5], [-1, 0.5]])
    chosen = widget.select_region(region)
    expected = np.flatnonzero(adata.obs["label_conf"].to_numpy() < 0.5)
    assert expected.size > 0
    np.testing.assert_array_equal(np.sort(chosen), expected)
    for layer in viewer.layers:
        if layer.metadata.get("role") in (None, "flags", "confidence", "variability"):
            np.testing.assert_array_equal(selected_positions(layer), expected)
    suggested = [lay for lay in viewer.layers if lay.metadata.get("role") == "suggested"]
    for layer in suggested:  # a subset layer selects the chosen cells it shows
        shown = layer.metadata["cells"]
        np.testing.assert_array_equal(selected_positions(layer), np.intersect1d(shown, expected))
    np.testing.assert_array_equal(widget.selection, expected)
    assert widget._status.value.endswith(f"{expected.size} selected.")


def test_selection_on_the_tissue_highlights_the_map(trained_viewer):
    viewer = trained_viewer
    widget = DataMapWidget(viewer)
    flags = next(lay for lay in viewer.layers if lay.metadata.get("role") == "flags")
    flags.selected_data = {3, 10, 42}
    np.testing.assert_array_equal(widget.selection, [3, 10, 42])
    highlighted = widget._highlight.get_offsets()
    np.testing.assert_allclose(np.sort(highlighted[:, 1]), np.sort(widget._xy[[3, 10, 42], 1]))
    flags.selected_data = set()
    assert widget.selection.size == 0 and widget._highlight is None


def test_map_before_training_says_what_to_do(synthetic_viewer):
    widget = DataMapWidget(synthetic_viewer)
    assert "train" in widget._status.value.lower()
    assert widget.select_region(np.array([[0, 0], [1, 0], [1, 1]])).size == 0


def test_map_redraws_after_training(synthetic_viewer):
    from napari_annotatability._qt.training_widget import TrainingWidget

    widget = DataMapWidget(synthetic_viewer)
    trainer = TrainingWidget(synthetic_viewer, threaded=False)
    trainer._epochs.value = 5
    trainer._suggest.value = False
    trainer.train()
    assert len(widget._xy) == synthetic_viewer.layers["cells"].metadata["adata"].n_obs


def test_a_map_gone_with_its_viewer_never_draws_on_its_deleted_canvas(trained_viewer, qtbot):
    widget = DataMapWidget(trained_viewer)
    with qtbot.capture_exceptions() as exceptions:
        trained_viewer.layers.clear()  # each removal asks the map to redraw...
        del widget  # ...and the widget is gone before that draw runs
        gc.collect()
        for _ in range(3):
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
            QCoreApplication.processEvents()
    assert not exceptions, [str(e[1]) for e in exceptions]


def test_the_map_follows_napari_theme(trained_viewer):
    viewer = trained_viewer
    widget = DataMapWidget(viewer)
    for theme in ("light", "dark"):
        viewer.theme = theme
        colours = get_theme(theme)
        assert to_hex(widget.figure.get_facecolor()) == to_hex(colours.canvas.as_hex())
        assert to_hex(widget.axes.xaxis.label.get_color()) == to_hex(colours.text.as_hex())
    assert widget.toolbar is not None  # matplotlib's pan / zoom / save
