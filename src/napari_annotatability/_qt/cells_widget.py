"""The base of the dock widgets that work on one cells layer, chosen in a "cells" box."""

from __future__ import annotations

import napari
from magicgui.widgets import ComboBox, Container
from napari.layers import Layer, Points

from napari_annotatability._napari.spatialdata_bridge import (
    FROM_LAYER,
    cells_for,
    is_spatialdata_layer,
)
from napari_annotatability._napari.viewer_sync import cells_layers
from napari_annotatability._qt.overview import install_overview
from napari_annotatability.core import keys


class CellsWidget(Container):
    """A dock widget whose "cells" box follows the viewer's cells layers.

    napari-spatialdata's layers of annotated elements are offered too; choosing one
    makes the cells layer of its table rows (:mod:`~napari_annotatability._napari.
    spatialdata_bridge`) and chooses that.

    When layers come and go the box is refilled (the first cells layer is chosen when
    none is) and :meth:`layers_changed` runs; closing the widget stops the listening
    (:meth:`release`). Subclasses put ``self._cells`` among their widgets, override
    :meth:`layers_changed` and end ``__init__`` with ``self.refresh()``.

    Parameters
    ----------
    viewer
        The napari viewer.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self._viewer = viewer
        install_overview(viewer)  # whole sections of 1M cells stay interactive
        self._cells = ComboBox(label="cells", choices=self._cells_choices, nullable=True)
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self.refresh)
        self._cells.changed.connect(self._on_choice)
        self.native.destroyed.connect(self.release)

    def _cells_choices(self, _widget=None) -> list[tuple[str, Layer]]:
        ours = [(layer.name, layer) for layer in cells_layers(self._viewer)]
        linked = {layer.metadata.get(FROM_LAYER) for _, layer in ours}
        theirs = [
            (f"{layer.name} (napari-spatialdata)", layer)
            for layer in self._viewer.layers
            if is_spatialdata_layer(layer) and layer.name not in linked
        ]
        return ours + theirs

    def _on_choice(self, layer: Layer | None) -> None:
        """A napari-spatialdata layer chosen: work on the cells of its table instead."""
        if layer is None or not is_spatialdata_layer(layer):
            return
        cells = cells_for(self._viewer, layer)  # adds the layer: the box is refilled
        self._cells.value = cells

    def refresh(self, _event=None) -> None:
        """Refill the cells box from the viewer, then :meth:`layers_changed`."""
        self._cells.reset_choices()
        available = [layer for layer in self._cells.choices if layer is not None]
        if self._cells.value is None and available:
            ours = [layer for layer in available if not is_spatialdata_layer(layer)]
            if ours:  # a napari-spatialdata layer is turned into cells only when chosen
                self._cells.value = ours[0]
        self.layers_changed()

    def audited_cells(self) -> tuple[Points | None, str]:
        """The chosen cells layer when its annotation has an audit, else ``None`` and why."""
        source = self._cells.value
        if source is None:
            return None, "No cells: open data or a sample first."
        key = source.metadata.get("label_key")
        if key is None:
            return None, f"The layer {source.name!r} shows no annotation; open the data with one."
        adata = source.metadata["adata"]
        keys.adopt_unkeyed_audit(adata)
        if keys.audit_info(adata, key) is None:
            return None, f"No audit of {key!r} yet: train in 'Audit annotation' first."
        return source, ""

    def layers_changed(self) -> None:
        """What else follows the viewer's layers (choices that depend on the cells)."""

    def release(self) -> None:
        """Stop listening to the viewer (the widget is closing)."""
        self._viewer.layers.events.inserted.disconnect(self.refresh)
        self._viewer.layers.events.removed.disconnect(self.refresh)
