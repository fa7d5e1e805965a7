"""A colour legend for the active Points layer (napari draws none).

Categorical colouring (flags, labels, suggestions): one row per category with its colour
and how many of the layer's cells have it. A colour map (confidence, variability, the
mislabel score, a gene): its name and the colours of the two ends of its range. Colours
set per point (the curated labels) are grouped by the feature named in
``metadata["legend"]``.
"""

from __future__ import annotations

import contextlib

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import Container, Label
from napari.layers import Layer, Points
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from napari_annotatability._napari.results_layers import LEGEND_FEATURE


def _hex(rgba) -> str:
    rgba = np.clip(np.asarray(rgba, dtype=float)[:3] * 255, 0, 255).round().astype(int)
    return "#{:02x}{:02x}{:02x}".format(*rgba)


def legend_entries(layer: Layer | None) -> tuple[str, list[tuple[str, str, int | None]]]:
    """The title and ``(name, colour hex, cells or None)`` rows of ``layer``'s colours."""
    if not isinstance(layer, Points) or len(layer.data) == 0:
        return "", []
    face = getattr(layer, "_face", None)  # napari's colour manager of the faces
    mode = str(layer.face_color_mode)
    name = getattr(getattr(face, "color_properties", None), "name", None)
    if mode == "cycle" and name in layer.features:
        colours = face.categorical_colormap.colormap
        counts = pd.Series(layer.features[name]).astype(str).value_counts()
        rows = [(str(k), _hex(v), int(counts.get(str(k), 0))) for k, v in colours.items()]
        return name, [row for row in rows if row[2] > 0]
    if mode == "colormap" and name in layer.features:
        low, high = layer.face_contrast_limits
        colormap = layer.face_colormap
        ends = colormap.map(np.array([0.0, 1.0]))
        return f"{name} ({colormap.name})", [
            (f"{low:.3g} (low)", _hex(ends[0]), None),
            (f"{high:.3g} (high)", _hex(ends[1]), None),
        ]
    feature = layer.metadata.get(LEGEND_FEATURE)
    if feature in layer.features:
        values = pd.Series(layer.features[feature]).astype(str).to_numpy()
        names, first, counts = np.unique(values, return_index=True, return_counts=True)
        colours = np.asarray(layer.face_color)[first]
        return feature, [
            (str(n), _hex(c), int(k)) for n, c, k in zip(names, colours, counts, strict=True)
        ]
    return "", []


class LegendWidget(Container):
    """The colours of the active layer, with their meaning and counts."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self._viewer = viewer
        self._title = Label(value="")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["", "cells"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.append(self._title)
        self.native.layout().addWidget(self.table)
        self._layer: Layer | None = None
        viewer.layers.selection.events.active.connect(self._follow)
        self.native.destroyed.connect(self.release)
        self._follow()

    def _follow(self, *_) -> None:
        self._unfollow()
        self._layer = self._viewer.layers.selection.active
        if isinstance(self._layer, Points):
            self._layer.events.face_color.connect(self.show_legend)
            self._layer.events.features.connect(self.show_legend)
        self.show_legend()

    def show_legend(self, *_) -> list[tuple[str, str, int | None]]:
        """Fill the table from the active layer; returns its rows."""
        title, rows = legend_entries(self._layer)
        if self._layer is None:
            self._title.value = "Select a layer to see its colours."
        elif not rows:
            self._title.value = f"{self._layer.name}: no colour legend."
        else:
            self._title.value = f"{self._layer.name}: {title}"
        self.table.setRowCount(len(rows))
        for row, (name, colour, count) in enumerate(rows):
            item = QTableWidgetItem(name)
            item.setBackground(QColor(colour))
            light = QColor(colour).lightness() > 140
            item.setForeground(QColor("#000000" if light else "#ffffff"))
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, QTableWidgetItem("" if count is None else f"{count:,}"))
        self.table.resizeColumnsToContents()
        return rows

    def release(self, *_) -> None:
        """Stop listening (widget closing)."""
        with contextlib.suppress(RuntimeError, TypeError):  # the viewer may be gone
            self._viewer.layers.selection.events.active.disconnect(self._follow)
        self._unfollow()

    def _unfollow(self) -> None:
        if isinstance(self._layer, Points):
            self._layer.events.face_color.disconnect(self.show_legend)
            self._layer.events.features.disconnect(self.show_legend)
        self._layer = None
