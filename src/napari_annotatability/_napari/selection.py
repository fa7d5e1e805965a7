"""Cell selections shared by every layer of one AnnData, in obs positions.

Each layer made from an AnnData lists the obs positions of its rows in
``metadata["cells"]`` (``None``: all cells in obs order), so a selection made on one
layer (or on the data map) can be carried to the others.
"""

from __future__ import annotations

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
