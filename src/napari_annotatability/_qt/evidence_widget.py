"""The cell evidence dock widget: why a cell is flagged, and what its label should be.

It follows the cell under the mouse (on any layer of the chosen data), a single selected
cell and so the cell under review, and shows the evidence of
:class:`~napari_annotatability.core.cell_evidence.CellEvidenceIndex`: the training curve
against its class, the out-of-fold models' top classes, the cut-off that made its flag,
its neighbourhood on the tissue and the genes that separate its label from the
suggested one.
"""

from __future__ import annotations

import logging
import time

import napari
import numpy as np
from magicgui.widgets import CheckBox
from napari.layers import Points
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from napari_annotatability._napari.audit_model import AuditModel, audit_of, shown_audit_key
from napari_annotatability._napari.layers import (
    label_colors,
    world_coordinates,
    world_point_size,
)
from napari_annotatability._napari.selection import layer_positions, layers_of
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability._qt.evidence_plots import (
    ClassBars,
    CurvePlot,
    GeneStrips,
    NeighbourhoodView,
)
from napari_annotatability.core.cell_evidence import CellEvidence, CellEvidenceIndex

logger = logging.getLogger(__name__)

#: Radius of the neighbourhood view, in cell sizes.
NEIGHBOURHOOD_CELLS = 8
#: Narrowest width of the evidence (pixels): room for the gene box plots.
MIN_WIDTH = 380
#: Hover updates are gathered for this long (milliseconds) before a cell is shown.
HOVER_DELAY_MS = 30


def _text() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


class EvidenceWidget(CellsWidget):
    """Why a cell is flagged: its curve, the models' classes, its tissue and its genes.

    Parameters
    ----------
    viewer
        The napari viewer.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self._hover = CheckBox(text="follow the mouse", value=True)
        self.extend([self._cells, self._hover])
        # plain labels the width of the dock, left-aligned, wrapped
        self._header, self._reason, self._classes_title = _text(), _text(), _text()
        self._neighbours, self._genes_title, self._memory = _text(), _text(), _text()
        self.curve = CurvePlot()
        self.classes = ClassBars()
        self.neighbourhood = NeighbourhoodView()
        self.genes = GeneStrips()
        # the evidence scrolls under the fixed choices when the dock is short
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        scroll.setMinimumWidth(MIN_WIDTH)
        self.native.layout().addWidget(scroll)
        for widget in (
            self._header,
            self._reason,
            self.curve,
            self._classes_title,
            self.classes,
            self._neighbours,
            self.neighbourhood,
            self._genes_title,
            self.genes,
            self._memory,
        ):
            layout.addWidget(widget)
        layout.addStretch()
        self.evidence: CellEvidence | None = None
        self.seconds = float("nan")
        self._index: CellEvidenceIndex | None = None
        self._source: Points | None = None
        self._model: AuditModel | None = None
        self._pending: tuple[Points, tuple] | None = None
        self._timer = QTimer(self.native)
        self._timer.setSingleShot(True)
        self._timer.setInterval(HOVER_DELAY_MS)
        self._timer.timeout.connect(self._show_hovered)
        viewer.mouse_move_callbacks.append(self._on_mouse_move)
        self.refresh()

    # --- following the data, its audits and its selection ---------------------------
    def layers_changed(self) -> None:
        """Follow the chosen cells layer, its audits and its selection.

        Other layers coming and going keep what is shown (and the index).
        """
        source = self._cells.value
        model = None if source is None else audit_of(source, self._viewer)
        if source is self._source and model is self._model and self.evidence is not None:
            return
        self._unfollow()
        if model is not None:
            model.follow_selection(self._viewer)
            model.events.results_changed.connect(self._on_audit)
            model.events.selection.connect(self._on_selection)
            self._model = model
        self._index = None
        self._source = source
        self._clear(self.audited_cells()[1])

    def _unfollow(self) -> None:
        if self._model is not None:
            self._model.events.results_changed.disconnect(self._on_audit)
            self._model.events.selection.disconnect(self._on_selection)
            self._model = None

    def release(self) -> None:
        """Stop listening (widget closing)."""
        self._unfollow()
        self._timer.stop()
        if self._on_mouse_move in self._viewer.mouse_move_callbacks:
            self._viewer.mouse_move_callbacks.remove(self._on_mouse_move)
        super().release()

    def _on_audit(self, _label_key: str) -> None:
        self._index = None
        if self.evidence is not None:
            self.show_cell(self.evidence.position)

    def _on_selection(self, positions: np.ndarray, _layer) -> None:
        # every layer of the data reports the same selection: show the cell once
        shown = self.evidence
        if len(positions) == 1 and (shown is None or shown.position != int(positions[0])):
            self.show_cell(int(positions[0]))

    def _on_mouse_move(self, viewer, event) -> None:
        if not self._hover.value or self._cells.value is None:
            return
        adata = self._cells.value.metadata.get("adata")
        layer = viewer.layers.selection.active
        if not isinstance(layer, Points) or layer not in layers_of(viewer, adata):
            layer = self._cells.value
        self._pending = (layer, tuple(event.position))
        if not self._timer.isActive():
            self._timer.start()

    def _show_hovered(self) -> None:
        if self._pending is None:
            return
        layer, position = self._pending
        self._pending = None
        if layer not in self._viewer.layers or not layer.visible:
            return
        row = layer.get_value(position, world=True)
        if row is None:
            return
        cell = int(layer_positions(layer)[int(row)])
        if self.evidence is None or self.evidence.position != cell:
            self.show_cell(cell)

    # --- what it shows -------------------------------------------------------------
    def index(self) -> CellEvidenceIndex | None:
        """The evidence index of the chosen cells' audit (made on first use)."""
        if self._index is None:
            source, why = self.audited_cells()
            if source is None:
                self._clear(why)
                return None
            self._index = CellEvidenceIndex(
                source.metadata["adata"],
                shown_audit_key(source),
                world_coordinates(source),
                layer_positions(source),
            )
        return self._index

    def show_cell(self, position: int) -> CellEvidence | None:
        """Show the evidence of the cell at obs ``position``; returns it."""
        start = time.perf_counter()
        index = self.index()
        if index is None:
            return None
        evidence = index.of(position)
        self.evidence = evidence
        colours = label_colors(index.adata, index.label_key)
        suggestion = evidence.suggestion or "none"
        score = (
            ""
            if np.isnan(evidence.mislabel_score)
            else f"mislabel score {evidence.mislabel_score:.3f}, "
        )
        self._header.setText(
            f"<b>{evidence.cell}</b>: label <b>{evidence.label}</b>, {evidence.flag}; "
            f"suggestion <b>{suggestion}</b><br>{score}conf {evidence.conf:.3f}, "
            f"var {evidence.var:.3f}"
        )
        self._reason.setText(f"<i>Why {evidence.flag}:</i> {evidence.reason}.")
        self.curve.set_data(evidence.curve, evidence.class_curve)
        self._classes_title.setText(
            "<i>What models that never saw its label think it is</i> (out of fold, with its "
            "tissue neighbours):"
            if evidence.top_classes
            else ""
        )
        self.classes.set_data(
            [(name, p, colours.get(name, "#888888")) for name, p in evidence.top_classes]
        )
        neighbours = ", ".join(f"{n} {label}" for label, n in evidence.neighbours) or "none"
        self._neighbours.setText(
            f"<i>Its tissue:</i> nearest {index.n_neighbours} cells: {neighbours}."
        )
        self._show_neighbourhood(index, evidence, colours)
        other = evidence.other
        self._genes_title.setText(
            f"<i>Genes separating</i> {evidence.label} (upper box) <i>from</i> {other} "
            "(lower box); the cyan line is this cell."
            if other and evidence.genes
            else ""
        )
        self.genes.set_data(
            evidence.genes, colours.get(evidence.label, "#888888"), colours.get(other, "#888888")
        )
        megabytes = index.memory_bytes / 2**20
        self.seconds = time.perf_counter() - start
        self._memory.setText(
            f"Curves and class probabilities held: {megabytes:,.1f} MB. "
            f"Shown in {1000 * self.seconds:.0f} ms."
        )
        return evidence

    def _show_neighbourhood(self, index: CellEvidenceIndex, evidence, colours: dict) -> None:
        source, tissue = self._cells.value, index.tissue
        around = np.zeros(0, dtype=np.int64)
        if tissue is not None and source is not None:
            size = world_point_size(source)
            radius = NEIGHBOURHOOD_CELLS * size
            around = tissue.within(evidence.position, radius)
        if around.size == 0:  # no coordinates, or a cell of another section of the data
            self.neighbourhood.set_data(None, [], np.zeros(2), 1.0, 1.0)
            return
        centre = tissue.coordinates(np.array([evidence.position]))[0]
        self.neighbourhood.set_data(
            tissue.coordinates(around),
            [colours.get(label, "#888888") for label in index.labels[around]],
            centre,
            radius,
            size,
        )

    def _clear(self, why: str) -> None:
        self.evidence = None
        self._header.setText(why or "Hover over a cell, or select one, to see its evidence.")
        for label in (
            self._reason,
            self._classes_title,
            self._neighbours,
            self._genes_title,
            self._memory,
        ):
            label.setText("")
        self.curve.set_data(None, None)
        self.classes.set_data([])
        self.neighbourhood.set_data(None, [], np.zeros(2), 1.0, 1.0)
        self.genes.set_data([], "#888888", "#888888")
