"""Dock widget: the data map (confidence vs variability of every cell), linked to the tissue.

Drawing a lasso on the map selects those cells on every layer of their AnnData;
selecting points on the tissue highlights them on the map.
"""

from __future__ import annotations

import logging

import napari
import numpy as np
from magicgui.widgets import Label
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from matplotlib.path import Path
from matplotlib.widgets import LassoSelector
from napari.layers import Points
from napari.utils.theme import get_theme
from qtpy.QtCore import QTimer

from napari_annotatability._napari.audit_model import AuditModel, audit_of
from napari_annotatability._napari.results_layers import FLAG_COLORS
from napari_annotatability._napari.selection import select_cells, selected_positions
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability.core import keys
from napari_annotatability.core.scores import FLAG_CATEGORIES

logger = logging.getLogger(__name__)

_UNFLAGGED = "#808080"


class DataMapWidget(CellsWidget):
    """Confidence against variability of the cells of one AnnData, coloured by flag.

    Parameters
    ----------
    viewer
        The napari viewer.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self._positions = np.zeros(0, dtype=np.int64)
        self._xy = np.zeros((0, 2))
        self._selection = np.zeros(0, dtype=np.int64)
        self._syncing = False
        self._model: AuditModel | None = None
        self._watched_source: Points | None = None
        self._foreground = "white"

        self._status = Label(value="")
        self.extend([self._cells, self._status])
        self.figure = Figure(figsize=(4, 4), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(300)
        # matplotlib's pan, zoom, home and save (the lasso rests while one is on)
        self.toolbar = NavigationToolbar2QT(self.canvas, self.native)
        self.native.layout().addWidget(self.toolbar)
        self.native.layout().addWidget(self.canvas)
        self.axes = self.figure.add_subplot()
        self._highlight = None
        self._lasso = LassoSelector(self.axes, self._on_lasso, useblit=False)
        # redraws run from a timer owned by the canvas: deleted with it, never after it
        self._redraw = QTimer(self.canvas)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(0)
        self._redraw.timeout.connect(self._draw_now)

        self._cells.changed.connect(self.draw)
        viewer.events.theme.connect(self.draw)
        self.refresh()

    # --- layers --------------------------------------------------------------------
    def layers_changed(self) -> None:
        """Follow the chosen cells layer."""
        self._watch()
        self.draw()

    def _watch(self) -> None:
        """Listen to the selections on the shown AnnData and to the features of its cells."""
        self._unwatch()
        source = self._cells.value
        if source is None:
            return
        model = audit_of(source, self._viewer)
        if model is not None:
            model.follow_selection(self._viewer)
            model.events.selection.connect(self._on_selection)
            self._model = model
        source.events.features.connect(self.draw)
        self._watched_source = source

    def _unwatch(self) -> None:
        if self._model is not None:
            self._model.events.selection.disconnect(self._on_selection)
            self._model = None
        if self._watched_source is not None:
            self._watched_source.events.features.disconnect(self.draw)
            self._watched_source = None

    def release(self) -> None:
        """Stop listening to the viewer (widget closing)."""
        self._unwatch()
        self._viewer.events.theme.disconnect(self.draw)
        super().release()

    def _alive(self) -> bool:
        """Whether the canvas still exists (a widget being deleted must not draw)."""
        try:
            self.canvas.objectName()
        except RuntimeError:  # its Qt object is gone
            return False
        return True

    def _request_draw(self) -> None:
        if self._alive():
            self._redraw.start()

    def _draw_now(self) -> None:
        if self._alive():
            self.canvas.draw()

    # --- drawing -------------------------------------------------------------------
    def draw(self, _event=None) -> None:
        """Redraw the map from the AnnData of the chosen cells layer, in napari's theme."""
        if not self._alive():
            return
        theme = get_theme(self._viewer.theme)
        background, text = theme.canvas.as_hex(), theme.text.as_hex()
        self._foreground = text
        self.figure.set_facecolor(background)
        ax = self.axes
        ax.clear()
        ax.set_facecolor(background)
        for spine in ax.spines.values():
            spine.set_color(theme.foreground.as_hex())
        ax.tick_params(colors=text)
        ax.set_xlabel("variability", color=text)
        ax.set_ylabel("confidence", color=text)
        self._highlight = None
        source = self._cells.value
        obs = None if source is None else source.metadata["adata"].obs
        label_key = None if source is None else source.metadata.get("label_key")
        if obs is None or label_key is None or keys.conf_key(label_key) not in obs.columns:
            self._positions = np.zeros(0, dtype=np.int64)
            self._xy = np.zeros((0, 2))
            self._status.value = "No confidence yet: train in 'Audit annotation' first."
            self._request_draw()
            return
        cells = source.metadata.get("cells")
        positions = np.arange(len(obs)) if cells is None else np.asarray(cells)
        conf = obs[keys.conf_key(label_key)].to_numpy(dtype=float)[positions]
        var = obs[keys.var_key(label_key)].to_numpy(dtype=float)[positions]
        scored = np.isfinite(conf) & np.isfinite(var)
        self._positions = positions[scored]
        self._xy = np.column_stack([var[scored], conf[scored]])
        flag_column = keys.flag_key(label_key)
        flags = (
            obs[flag_column].astype(object).to_numpy()[self._positions]
            if flag_column in obs.columns
            else np.full(len(self._positions), None, dtype=object)
        )
        size = float(np.clip(2e4 / max(len(self._positions), 1), 0.5, 12))
        for flag in FLAG_CATEGORIES:
            mine = flags == flag
            if mine.any():
                ax.scatter(
                    *self._xy[mine].T,
                    s=size,
                    c=FLAG_COLORS[flag],
                    linewidths=0,
                    rasterized=True,
                    label=f"{flag} ({mine.sum()})",
                )
        other = ~np.isin(flags, FLAG_CATEGORIES)
        if other.any():
            ax.scatter(*self._xy[other].T, s=size, c=_UNFLAGGED, linewidths=0, rasterized=True)
        legend = ax.legend(loc="lower right", fontsize="small", facecolor=background)
        for label in legend.get_texts():
            label.set_color(text)
        self._show_selection(selected_positions(source))

    def _show_selection(self, positions: np.ndarray) -> None:
        self._selection = np.intersect1d(self._positions, positions)
        if self._highlight is not None:
            self._highlight.remove()
            self._highlight = None
        if self._selection.size:
            rows = np.flatnonzero(np.isin(self._positions, self._selection))
            self._highlight = self.axes.scatter(
                *self._xy[rows].T,
                s=14,
                facecolors="none",
                edgecolors=self._foreground,
                linewidths=0.8,
            )
        self._status.value = f"{len(self._positions)} cells; {self._selection.size} selected."
        self._request_draw()

    # --- selection -----------------------------------------------------------------
    @property
    def selection(self) -> np.ndarray:
        """obs positions of the cells highlighted on the map."""
        return self._selection

    def select_region(self, vertices: np.ndarray) -> np.ndarray:
        """Select the cells inside a polygon of (variability, confidence) vertices.

        Returns their obs positions; they become selected on every layer of the AnnData.
        """
        inside = Path(np.asarray(vertices, dtype=float)).contains_points(self._xy)
        positions = self._positions[inside]
        source = self._cells.value
        if source is None:
            return positions
        self._syncing = True
        try:
            select_cells(self._viewer, source.metadata["adata"], positions)
        finally:
            self._syncing = False
        self._show_selection(positions)
        return positions

    def _on_lasso(self, vertices) -> None:
        if len(vertices) >= 3:
            self.select_region(np.asarray(vertices))

    def _on_selection(self, positions: np.ndarray, _layer: Points) -> None:
        if not self._syncing:
            self._show_selection(positions)
