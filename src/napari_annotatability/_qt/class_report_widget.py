"""The class report dock widget: per class, and given x suggested labels that select cells."""

from __future__ import annotations

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import Label, PushButton
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from napari_annotatability._napari.audit_model import AuditModel, audit_of, shown_audit_key
from napari_annotatability._napari.selection import select_cells
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability.api import audit_summary, class_report, suggestion_matrix
from napari_annotatability.core import keys
from napari_annotatability.core.class_report import cells_given_suggested
from napari_annotatability.core.scores import FLAG_COLORS, HARD

#: Columns of the class table (report column, header).
SHOWN = (
    ("cells", "cells"),
    ("flagged", "flagged"),
    ("flagged_pct", "% flagged"),
    ("estimated_wrong", "est. wrong"),
    ("top_suggestion", "top suggestion"),
)


def _fill(table: QTableWidget, frame: pd.DataFrame, *, shade: bool = False) -> None:
    """Put a DataFrame into a read-only table (row headers = index)."""
    table.clear()
    table.setRowCount(len(frame.index))
    table.setColumnCount(len(frame.columns))
    table.setHorizontalHeaderLabels([str(c) for c in frame.columns])
    table.setVerticalHeaderLabels([str(i) for i in frame.index])
    top = float(frame.to_numpy(dtype=float).max()) if shade and frame.size else 0.0
    for row, (_, values) in enumerate(frame.iterrows()):
        for column, value in enumerate(values):
            if isinstance(value, float):
                text = "" if np.isnan(value) else f"{value:.1f}"
            else:
                text = f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)
            item = QTableWidgetItem(text)
            if shade and top > 0:
                alpha = int(200 * float(value) / top)
                shade = QColor(FLAG_COLORS[HARD])
                shade.setAlpha(alpha)
                item.setBackground(shade)
            table.setItem(row, column, item)
    table.resizeColumnsToContents()


class ClassReportWidget(CellsWidget):
    """The audit by class, and which labels the flagged cells should have.

    The upper table lists each annotated class: cells, flagged Hard-to-learn, % flagged,
    estimated wrong labels and the most common suggested label. The lower table crosses
    given labels (rows) with suggested labels (columns); clicking an entry selects those
    cells on every layer of the data (and in the data map). Both follow the chosen cells
    layer and every new audit of it.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self._summary = Label(value="")
        self._refresh = PushButton(text="Refresh")
        self._status = Label(value="")
        for label in (self._summary, self._status):
            label.native.setWordWrap(True)  # an uncertain count's summary is long
        self.classes = QTableWidget()
        self.matrix = QTableWidget()
        for table in (self.classes, self.matrix):
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.setMinimumHeight(140)
        self.matrix.setToolTip("Click an entry to select those cells (rows: given label).")
        self.extend([self._cells, self._summary, self._refresh])
        layout = self.native.layout()
        layout.addWidget(self.classes)
        layout.addWidget(self.matrix)
        self.append(self._status)
        self._model: AuditModel | None = None
        self._key: str | None = None
        self._refresh.clicked.connect(self.show_report)
        self.matrix.cellClicked.connect(self.select_entry)
        self.refresh()

    # --- following the layer and its audits ------------------------------------------
    def layers_changed(self) -> None:
        """Follow the chosen cells layer and its audits."""
        self._follow()
        self.show_report()

    def _follow(self) -> None:
        self._unfollow()
        source = self._cells.value
        model = None if source is None else audit_of(source, self._viewer)
        if model is not None:
            model.events.results_changed.connect(self._on_audit)
            self._model = model

    def _on_audit(self, _label_key: str) -> None:
        self.show_report()

    def _unfollow(self) -> None:
        if self._model is not None:
            self._model.events.results_changed.disconnect(self._on_audit)
            self._model = None

    def release(self) -> None:
        """Stop listening (widget closing)."""
        self._unfollow()
        super().release()

    # --- what it shows -------------------------------------------------------------
    def show_report(self) -> pd.DataFrame | None:
        """Fill both tables from the audit of the chosen cells; returns the class report."""
        source, why = self.audited_cells()
        self._status.value = ""
        if source is None:
            self._summary.value = why
            self._key = None
            for table in (self.classes, self.matrix):
                table.clear()
                table.setRowCount(0)
                table.setColumnCount(0)
            return None
        adata = source.metadata["adata"]
        key = shown_audit_key(source)
        self._key = key
        self._summary.value = audit_summary(adata, key)
        report = class_report(adata, key)
        _fill(
            self.classes,
            report[[name for name, _ in SHOWN]].set_axis([header for _, header in SHOWN], axis=1),
        )
        _fill(self.matrix, suggestion_matrix(adata, key), shade=True)
        return report

    def select_entry(self, row: int, column: int) -> np.ndarray:
        """Select the cells labelled as matrix row ``row`` and suggested as ``column``."""
        source = self._cells.value
        if source is None or self._key is None:
            return np.zeros(0, dtype=np.int64)
        given = self.matrix.verticalHeaderItem(row).text()
        suggested = self.matrix.horizontalHeaderItem(column).text()
        adata = source.metadata["adata"]
        positions = cells_given_suggested(
            adata.obs[self._key], adata.obs[keys.suggestion_key(self._key)], given, suggested
        )
        select_cells(self._viewer, adata, positions)
        self._status.value = (
            f"Selected {positions.size:,} cells labelled {given} with suggestion {suggested}."
        )
        return positions
