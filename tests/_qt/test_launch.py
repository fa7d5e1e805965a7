"""``napari-annotatability view``: the window a person sees first."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QCoreApplication

from napari_annotatability._qt.launch import open_viewer

pytestmark = pytest.mark.gui


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
