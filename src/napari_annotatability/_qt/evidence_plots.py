"""Small plots of the cell evidence widget, drawn with QPainter (no plotting library).

Each is a plain QWidget holding its data and painting it on demand, so updating one for
a new cell costs a repaint of a few hundred shapes at most.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

#: The cell itself (the review ring's colour) and what it is compared with.
CELL_COLOR = QColor("#00e5ff")
REFERENCE_COLOR = QColor(170, 170, 170)
TEXT_COLOR = QColor(210, 210, 210)
MARGIN = 6


def _qcolor(color: str | np.ndarray) -> QColor:
    if isinstance(color, str):
        return QColor(color)
    r, g, b, a = [*np.asarray(color, dtype=float).ravel().tolist(), 1.0][:4]
    return QColor.fromRgbF(r, g, b, a)


class _Plot(QWidget):
    """A fixed-height plot that expands sideways and says when it has nothing to show."""

    def __init__(self, height: int, empty: str) -> None:
        super().__init__()
        self.setMinimumHeight(height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.empty = empty

    def sizeHint(self) -> QSize:
        return QSize(300, self.minimumHeight())

    def _begin(self) -> QPainter:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(TEXT_COLOR)
        return painter

    def _say_empty(self, painter: QPainter) -> None:
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty)


class _RowPlot(_Plot):
    """A plot of one row per item, as tall as its rows."""

    ROW = 18

    def __init__(self, empty: str) -> None:
        super().__init__(self.ROW + 6, empty)
        self.rows: list = []

    def _show_rows(self, rows: list) -> None:
        self.rows = rows
        self.setMinimumHeight(max(len(rows), 1) * self.ROW + 6)
        self.updateGeometry()
        self.update()


class CurvePlot(_Plot):
    """The cell's probability of its label per epoch over its class's median and quartiles."""

    def __init__(self) -> None:
        super().__init__(110, "No training curves: keep them when training.")
        self.curve: np.ndarray | None = None
        self.band: np.ndarray | None = None

    def set_data(self, curve: np.ndarray | None, band: np.ndarray | None) -> None:
        """``curve`` (epochs,) and ``band`` (25th, 50th, 75th percentiles x epochs)."""
        self.curve, self.band = curve, band
        self.update()

    def paintEvent(self, _event) -> None:
        painter = self._begin()
        if self.curve is None:
            self._say_empty(painter)
            return
        left, top = 28, 16
        width = max(self.width() - left - MARGIN, 10)
        height = max(self.height() - top - 18, 10)
        n = len(self.curve)

        def point(epoch: float, p: float) -> QPointF:
            x = left + width * (epoch / max(n - 1, 1))
            return QPointF(x, top + height * (1 - float(np.clip(p, 0, 1))))

        painter.drawText(QRectF(0, top - 6, left - 4, 12), Qt.AlignmentFlag.AlignRight, "1")
        painter.drawText(
            QRectF(0, top + height - 6, left - 4, 12), Qt.AlignmentFlag.AlignRight, "0"
        )
        painter.drawText(
            QRectF(left, top + height + 2, width, 14),
            Qt.AlignmentFlag.AlignCenter,
            "epoch (p: probability of its label)",
        )
        painter.setPen(QPen(REFERENCE_COLOR, 1))
        painter.drawRect(QRectF(left, top, width, height))
        epochs = np.arange(n)
        if self.band is not None:
            low, median, high = self.band
            band = QPainterPath(point(0, high[0]))
            for e in epochs[1:]:
                band.lineTo(point(e, high[e]))
            for e in epochs[::-1]:
                band.lineTo(point(e, low[e]))
            band.closeSubpath()
            fill = QColor(REFERENCE_COLOR)
            fill.setAlpha(70)
            painter.fillPath(band, fill)
            painter.setPen(QPen(REFERENCE_COLOR, 1.5, Qt.PenStyle.DashLine))
            painter.drawPolyline([point(e, median[e]) for e in epochs])
        painter.setPen(QPen(CELL_COLOR, 2))
        painter.drawPolyline([point(e, self.curve[e]) for e in epochs])
        painter.drawText(QRectF(left, 0, width, 14), Qt.AlignmentFlag.AlignLeft, "this cell")
        painter.setPen(REFERENCE_COLOR)
        painter.drawText(
            QRectF(left, 0, width, 14), Qt.AlignmentFlag.AlignRight, "its class (median, IQR)"
        )
        painter.setPen(TEXT_COLOR)
        painter.drawText(
            QRectF(0, top + height / 2 - 7, left - 2, 14), Qt.AlignmentFlag.AlignRight, "p"
        )


class ClassBars(_RowPlot):
    """The most probable classes as bars of their probability, in their class colours."""

    def __init__(self) -> None:
        super().__init__("No out-of-fold probabilities (a dynamics audit).")

    def set_data(self, rows: list[tuple[str, float, str | np.ndarray]]) -> None:
        """``(class, probability, colour)`` rows, most probable first."""
        self._show_rows([(name, p, _qcolor(color)) for name, p, color in rows])

    def paintEvent(self, _event) -> None:
        painter = self._begin()
        if not self.rows:
            self._say_empty(painter)
            return
        name_width = min(160, self.width() // 2)
        bar_width = max(self.width() - name_width - 50, 10)
        for i, (name, p, color) in enumerate(self.rows):
            y = 2 + i * self.ROW
            painter.setPen(TEXT_COLOR)
            painter.drawText(
                QRectF(0, y, name_width - 4, self.ROW), Qt.AlignmentFlag.AlignRight, name
            )
            painter.fillRect(QRectF(name_width, y + 3, bar_width * p, self.ROW - 6), color)
            painter.drawText(
                QRectF(name_width + bar_width + 4, y, 46, self.ROW),
                Qt.AlignmentFlag.AlignLeft,
                f"{p:.2f}",
            )


class NeighbourhoodView(_Plot):
    """The cells around one cell, in their label colours, the cell ringed."""

    def __init__(self) -> None:
        super().__init__(150, "No tissue coordinates.")
        self.points: np.ndarray | None = None
        self.colors: list[QColor] = []
        self.centre = np.zeros(2)
        self.radius = 1.0
        self.cell_size = 1.0

    def set_data(
        self,
        points: np.ndarray | None,
        colors: list[str | np.ndarray],
        centre: np.ndarray,
        radius: float,
        cell_size: float,
    ) -> None:
        """Cells (row, column) within ``radius`` of ``centre``, drawn ``cell_size`` wide."""
        self.points = points
        self.colors = [_qcolor(c) for c in colors]
        self.centre, self.radius, self.cell_size = np.asarray(centre), radius, cell_size
        self.update()

    def paintEvent(self, _event) -> None:
        painter = self._begin()
        if self.points is None or not len(self.points):
            self._say_empty(painter)
            return
        side = min(self.width(), self.height()) - 2 * MARGIN
        scale = side / (2 * self.radius)
        cx, cy = self.width() / 2, self.height() / 2
        painter.setPen(Qt.PenStyle.NoPen)
        dot = max(self.cell_size * scale, 2.0)
        for (row, column), color in zip(self.points, self.colors, strict=True):
            x = cx + (column - self.centre[1]) * scale
            y = cy + (row - self.centre[0]) * scale
            painter.setBrush(color)
            painter.drawEllipse(QPointF(x, y), dot / 2, dot / 2)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(CELL_COLOR, 2))
        painter.drawEllipse(QPointF(cx, cy), dot * 1.25, dot * 1.25)
        painter.setPen(REFERENCE_COLOR)
        painter.drawRect(QRectF(cx - side / 2, cy - side / 2, side, side))


class GeneStrips(_RowPlot):
    """Per gene: both classes' distributions as box plots and the cell's value on them."""

    ROW = 32

    def __init__(self) -> None:
        super().__init__("No genes to compare (no other class, or no genes).")
        self.colors = (REFERENCE_COLOR, REFERENCE_COLOR)

    def set_data(self, genes: list, label_color: str, other_color: str) -> None:
        """:class:`~napari_annotatability.core.cell_evidence.GeneContrast` rows."""
        self.colors = (_qcolor(label_color), _qcolor(other_color))
        self._show_rows(list(genes))

    def paintEvent(self, _event) -> None:
        painter = self._begin()
        if not self.rows:
            self._say_empty(painter)
            return
        name_width = 90
        width = max(self.width() - name_width - 60, 20)
        for i, gene in enumerate(self.rows):
            y = 3 + i * self.ROW
            low = min(gene.label_percentiles[0], gene.other_percentiles[0], gene.cell_value)
            high = max(gene.label_percentiles[-1], gene.other_percentiles[-1], gene.cell_value)
            span = high - low if high > low else 1.0

            def x_of(value: float, low=low, span=span) -> float:
                return name_width + width * (value - low) / span

            painter.setPen(TEXT_COLOR)
            painter.drawText(
                QRectF(0, y, name_width - 6, self.ROW),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                gene.gene,
            )
            for j, percentiles in enumerate((gene.label_percentiles, gene.other_percentiles)):
                p5, p25, p50, p75, p95 = (float(v) for v in percentiles)
                top = y + 4 + j * 13
                color = self.colors[j]
                painter.setPen(QPen(color, 1))
                painter.drawLine(QPointF(x_of(p5), top + 5), QPointF(x_of(p95), top + 5))
                fill = QColor(color)
                fill.setAlpha(150)
                painter.fillRect(QRectF(x_of(p25), top, max(x_of(p75) - x_of(p25), 1), 10), fill)
                painter.setPen(QPen(TEXT_COLOR, 1.5))
                painter.drawLine(QPointF(x_of(p50), top), QPointF(x_of(p50), top + 10))
            x = x_of(gene.cell_value)
            painter.setPen(QPen(CELL_COLOR, 2.5))
            painter.drawLine(QPointF(x, y + 1), QPointF(x, y + 29))
            painter.setPen(TEXT_COLOR)
            painter.drawText(
                QRectF(name_width + width + 6, y, 54, self.ROW),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{gene.cell_value:.3g}",
            )
