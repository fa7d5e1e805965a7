"""Open napari on a dataset with the audit widgets docked (``napari-annotatability view``)."""

from __future__ import annotations

import logging
from pathlib import Path

import napari
import numpy as np

from napari_annotatability._napari.viewer_sync import cells_layers
from napari_annotatability._qt.data_map import DataMapWidget
from napari_annotatability._qt.training_widget import TrainingWidget
from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)

PLUGIN = "napari-annotatability"
SAMPLE = "visium_dlpfc"


def open_viewer(
    path: Path | None = None,
    *,
    train: bool = False,
    epochs: int | None = None,
    screenshot: Path | None = None,
    size: tuple[int, int] = (1400, 900),
) -> napari.Viewer:
    """A viewer showing ``path`` (or the bundled sample) with the audit widgets docked.

    Parameters
    ----------
    path
        An ``.h5ad`` file, AnnData ``.zarr`` folder or SpatialData store; ``None`` opens
        the bundled sample.
    train
        Start training at once (in the background) with the widget's settings.
    epochs
        Epochs of that training (the widget's default otherwise).
    screenshot
        After training, save a screenshot of the whole window here and close napari
        (for documentation and for checking the command end to end).
    size
        Window size in pixels.
    """
    viewer = napari.Viewer(title="Annotatability")
    viewer.window.resize(*size)
    if path is None:
        viewer.open_sample(PLUGIN, SAMPLE)
    else:
        viewer.open(str(path), plugin=PLUGIN)
    if not cells_layers(viewer):
        raise AnnotatabilityInputError(
            f"{path} opened no cells layer; is it a spatial AnnData or SpatialData store?"
        )
    trainer = TrainingWidget(viewer)
    viewer.window.add_dock_widget(trainer, name="Audit annotation", area="right")
    data_map = DataMapWidget(viewer)
    viewer.window.add_dock_widget(data_map, name="Data map", area="right")
    fit_cells(viewer)
    if epochs is not None:
        trainer._epochs.value = epochs
    if train:
        worker = trainer.train()
        if screenshot is not None and worker is not None:
            worker.finished.connect(lambda: _save_and_close(viewer, screenshot))
    elif screenshot is not None:
        _save_and_close(viewer, screenshot)
    return viewer


def fit_cells(viewer: napari.Viewer) -> None:
    """Fit the camera to the cells in the canvas left beside the docked widgets.

    Now (docking shrinks the canvas after napari fitted it to the layers) and once
    more when the window is shown (its final size is known only then).
    """
    from qtpy.QtCore import QCoreApplication, QTimer

    QCoreApplication.processEvents()  # the dock widgets take their room
    viewer.reset_view()
    QTimer.singleShot(0, viewer.reset_view)


def _save_and_close(viewer: napari.Viewer, path: Path) -> None:
    from qtpy.QtCore import QTimer

    def save() -> None:
        viewer.reset_view()
        image = viewer.screenshot(canvas_only=False, flash=False)
        write_png(np.asarray(image), Path(path))
        logger.info("Screenshot written to %s.", path)
        viewer.close()

    QTimer.singleShot(500, save)


def write_png(image: np.ndarray, path: Path) -> None:
    """Save an RGBA screenshot as PNG with Qt (no imaging library needed)."""
    from qtpy.QtGui import QImage

    height, width = image.shape[:2]
    rgba = np.ascontiguousarray(image[..., :4])
    qimage = QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888)
    if not qimage.save(str(path)):
        raise AnnotatabilityInputError(f"Could not write the screenshot to {str(path)!r}.")
