"""Cell selections shared by every layer of one AnnData, in obs positions.

Each layer made from an AnnData lists the obs positions of its rows in
``metadata["cells"]`` (``None``: all cells in obs order), so a selection made on one
layer (or on the data map) can be carried to the others.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from anndata import AnnData
from napari.layers import Points
from napari.viewer import Viewer


def layer_positions(layer: Points) -> np.ndarray:
    """obs positions of the rows of ``layer``."""
    cells = layer.metadata.get("cells")
    if cells is None:
        return np.arange(len(layer.data))
    return np.asarray(cells)


def selected_positions(layer: Points) -> np.ndarray:
    """obs positions of the selected points of ``layer``, sorted."""
    rows = np.fromiter(layer.selected_data, dtype=np.int64)
    return np.sort(layer_positions(layer)[rows])


def rows_of(layer: Points, positions: np.ndarray) -> np.ndarray:
    """Rows of ``layer`` showing the cells at obs ``positions``."""
    return np.flatnonzero(np.isin(layer_positions(layer), positions))


def layers_of(viewer: Viewer, adata: AnnData) -> list[Points]:
    """Every Points layer of ``viewer`` made from ``adata``."""
    return [
        layer
        for layer in viewer.layers
        if isinstance(layer, Points) and layer.metadata.get("adata") is adata
    ]


def current_selection(viewer: Viewer, adata: AnnData) -> np.ndarray:
    """obs positions selected on the active layer of ``adata``, else on any of its layers.

    Empty when no layer of ``adata`` has a selection.
    """
    layers = layers_of(viewer, adata)
    active = viewer.layers.selection.active
    if active in layers:
        layers.insert(0, active)
    for layer in layers:
        chosen = selected_positions(layer)
        if chosen.size:
            return chosen
    return np.zeros(0, dtype=np.int64)


def select_cells(viewer: Viewer, adata: AnnData, positions: np.ndarray) -> None:
    """Select the cells at obs ``positions`` on every layer made from ``adata``."""
    positions = np.asarray(positions, dtype=np.int64)
    for layer in layers_of(viewer, adata):
        layer.selected_data = set(rows_of(layer, positions).tolist())


class SelectionRelay:
    """The selection on any Points layer of one AnnData, as one event of obs positions.

    Calls ``emit(positions, layer)`` whenever the selection of a layer made from
    ``adata`` changes, following the layers as they come and go. Keeps no strong
    reference to anything but what it is given; :meth:`close` stops it.

    Parameters
    ----------
    viewer
        The viewer whose layers to follow.
    adata
        The AnnData whose layers to follow.
    emit
        Called with the obs positions selected on a layer and that layer.
    """

    def __init__(self, viewer: Viewer, adata: AnnData, emit) -> None:
        self.viewer = viewer
        self._adata = adata
        self._emit = emit
        self._watched: list[tuple[Points, partial]] = []
        viewer.layers.events.inserted.connect(self._rewatch)
        viewer.layers.events.removed.connect(self._rewatch)
        self._rewatch()

    def _rewatch(self, _event=None) -> None:
        for layer, callback in self._watched:
            layer.selected_data.events.items_changed.disconnect(callback)
        self._watched = []
        for layer in layers_of(self.viewer, self._adata):
            callback = partial(self._changed, layer)
            layer.selected_data.events.items_changed.connect(callback)
            self._watched.append((layer, callback))

    def _changed(self, layer: Points, *_changes) -> None:
        self._emit(selected_positions(layer), layer)

    def close(self) -> None:
        """Stop following the layers."""
        self.viewer.layers.events.inserted.disconnect(self._rewatch)
        self.viewer.layers.events.removed.disconnect(self._rewatch)
        for layer, callback in self._watched:
            layer.selected_data.events.items_changed.disconnect(callback)
        self._watched = []
