"""The README's main command and what a person sees: real windows under Xvfb."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from qtpy.QtCore import QCoreApplication
from qtpy.QtGui import QImage

from napari_annotatability._napari.results_layers import FLAG_COLORS
from napari_annotatability._qt.data_map import DataMapWidget
from napari_annotatability._qt.launch import open_viewer
from napari_annotatability._qt.training_widget import TrainingWidget
from napari_annotatability.cli import main
from napari_annotatability.core.scores import AMBIGUOUS, EASY, HARD

pytestmark = pytest.mark.gui


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def share_near(rgb: np.ndarray, colour: str, tolerance: int = 40) -> float:
    """Fraction of pixels within ``tolerance`` of ``colour``."""
    return float((np.abs(rgb.astype(int) - hex_rgb(colour)).max(axis=1) < tolerance).mean())


def test_flags_on_the_tissue_in_a_real_window(make_napari_viewer, add_slips):
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1200, 800)
    viewer.open_sample("napari-annotatability", "visium_dlpfc")
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    slipped = add_slips(adata, "layer")
    widget = TrainingWidget(viewer, threaded=False)
    viewer.window.add_dock_widget(widget)
    viewer.window.add_dock_widget(DataMapWidget(viewer))
    widget._epochs.value = 10
    widget._suggest_epochs.value = 5
    widget.train()
    viewer.reset_view()
    canvas = viewer.screenshot(canvas_only=True, flash=False)[..., :3].reshape(-1, 3)
    # the flags layer is on top: its colours cover the tissue, the slips in red
    assert share_near(canvas, FLAG_COLORS[EASY]) > 0.1
    assert share_near(canvas, FLAG_COLORS[HARD]) > 0.005
    hard = (adata.obs["layer_flag"] == HARD).to_numpy()
    assert slipped[hard].mean() > 0.7 and hard[slipped].mean() > 0.7
    window = viewer.screenshot(canvas_only=False, flash=False)
    assert window.shape[0] >= 600 and window.shape[1] >= 1000


def test_view_command_opens_trains_and_saves_a_screenshot(tmp_path):
    png = tmp_path / "view.png"
    command = [sys.executable, "-m", "napari_annotatability", "view", "--sample", "--train"]
    command += ["--epochs", "3", "--screenshot", str(png)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    image = QImage(str(png))
    assert image.width() >= 1000 and image.height() >= 600
    # the window shows flag colours (the tissue and the data map): the layer
    # boundaries Ambiguous, the rest Easy-to-learn
    bits = image.convertToFormat(QImage.Format.Format_RGB888)
    ptr = bits.constBits()
    ptr.setsize(bits.sizeInBytes())
    rgb = np.frombuffer(ptr, np.uint8).reshape(bits.height(), bits.bytesPerLine())
    rgb = rgb[:, : 3 * bits.width()].reshape(-1, 3)
    assert share_near(rgb, FLAG_COLORS[AMBIGUOUS]) > 0.005
    assert share_near(rgb, FLAG_COLORS[EASY]) > 0.02


def test_view_command_bad_input(tmp_path, capsys):
    assert main(["view"]) == 2
    assert "--sample" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "missing.h5ad")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_first_view_shows_every_cell_beside_the_docked_widgets(qtbot):
    viewer = open_viewer(size=(1600, 1000))
    try:
        viewer.window._qt_window.show()
        qtbot.waitExposed(viewer.window._qt_window)
        QCoreApplication.processEvents()
        cells = np.asarray(viewer.layers["DLPFC layer"].data)
        width, height = viewer.window._qt_viewer.canvas.size  # pixels
        canvas = np.array([height, width], dtype=float)  # napari order: rows, columns
        camera = viewer.camera
        offset = np.abs(cells - np.asarray(camera.center)[-2:]) * camera.zoom
        assert (offset.max(axis=0) <= canvas / 2).all(), (offset.max(axis=0), canvas)
    finally:
        viewer.close()
