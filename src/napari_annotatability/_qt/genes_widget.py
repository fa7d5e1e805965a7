"""Dock widget: genes ranked by their association with confidence, shown on the tissue."""

from __future__ import annotations

import logging
from pathlib import Path

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, Label, PushButton
from napari.layers import Points
from napari.qt.threading import FunctionWorker
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QAbstractItemView, QFileDialog, QTableWidget, QTableWidgetItem

from napari_annotatability import api
from napari_annotatability._napari.results_layers import expression_layer, gene_values
from napari_annotatability._napari.viewer_sync import cells_view, show_layer
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability._qt.tasks import failure_message, start_task
from napari_annotatability.core.anndata_io import write_csv_atomic
from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)

_X = "X"
_COLUMNS = ("gene", "direction", "score", "rank")


class GenesWidget(CellsWidget):
    """Score genes against confidence, list them, and show one on the tissue.

    Parameters
    ----------
    viewer
        The napari viewer.
    threaded
        Score in a worker thread (the default); ``False`` for scripts and tests.
    """

    def __init__(self, viewer: napari.viewer.Viewer, *, threaded: bool = True) -> None:
        super().__init__(viewer)
        self.threaded = threaded
        self.worker: FunctionWorker | None = None
        self._source: Points | None = None
        self.table: pd.DataFrame = pd.DataFrame(columns=list(_COLUMNS))

        self._matrix = ComboBox(label="expression", choices=self._matrix_choices)
        self._count_filter = CheckBox(label="filter genes by total counts", value=True)
        self._min_counts = FloatSpinBox(label="min total counts", value=100, min=0, max=1e12)
        self._direction = ComboBox(label="show", choices=["both", "high", "low"], value="both")
        self._score = PushButton(text="Score genes")
        self._export = PushButton(text="Export CSV...", enabled=False)
        self._status = Label(value="")
        self.extend(
            [
                self._cells,
                self._matrix,
                self._count_filter,
                self._min_counts,
                self._score,
                self._direction,
                self._export,
                self._status,
            ]
        )
        self._status.native.setWordWrap(True)
        self._min_counts.tooltip = "Genes whose column sum is below this are left out."
        self._count_filter.tooltip = "Off by default for scaled data (negative values)."
        self._count_filter.changed.connect(lambda on: setattr(self._min_counts, "enabled", on))
        self._matrix.tooltip = "Score X or a layer, e.g. raw counts."
        self.view = QTableWidget(0, len(_COLUMNS))
        self.view.setHorizontalHeaderLabels(list(_COLUMNS))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setMinimumHeight(250)
        self.native.layout().addWidget(self.view)

        self._cells.changed.connect(self._on_cells_changed)
        self._matrix.changed.connect(self._default_min_counts)
        self._score.clicked.connect(self.score)
        self._direction.changed.connect(self._fill)
        self._export.clicked.connect(self._ask_export)
        self.view.cellClicked.connect(self._on_row_clicked)
        self.refresh()

    def _matrix_choices(self, _widget=None) -> list[str]:
        layer = self._cells.value
        return [_X] if layer is None else [_X, *layer.metadata["adata"].layers]

    def layers_changed(self) -> None:
        """Follow the chosen cells layer."""
        self._matrix.reset_choices()

    def _on_cells_changed(self, _layer=None) -> None:
        self._matrix.reset_choices()
        self.table = pd.DataFrame(columns=list(_COLUMNS))
        self._fill()
        self._default_min_counts()

    def _default_min_counts(self, _event=None) -> None:
        """Filter by counts (>= 100, as the reference) unless the data are scaled.

        Scaled data (negative values) have column sums near 0: a count filter would
        leave every gene out.
        """
        source = self._cells.value
        if source is None:
            return
        adata = source.metadata["adata"]
        layer = self._layer_key()
        matrix = adata.X if layer is None else adata.layers[layer]
        values = matrix.data if hasattr(matrix, "data") and hasattr(matrix, "nnz") else matrix
        negative = np.size(values) > 0 and float(np.min(values)) < 0
        self._count_filter.value = not negative

    def _layer_key(self) -> str | None:
        return None if self._matrix.value in (None, _X) else self._matrix.value

    def score(self) -> FunctionWorker | None:
        """Score the genes of the chosen cells' AnnData (in a worker when threaded).

        The scores are written and listed on the main thread when they are ready.
        """
        source, problem = self.audited_cells()
        if source is None:
            self._status.value = problem
            show_error(problem)
            return None
        self._source = source
        self._status.value = "Scoring genes..."
        self._score.enabled = False
        self.worker = start_task(
            api.compute_gene_scores,
            source.metadata["adata"],
            threaded=self.threaded,
            progress={"desc": "Gene scores"},
            returned=self._on_scored,
            errored=self._on_error,
            finished=self._on_finished,
            label_key=source.metadata["label_key"],
            layer=self._layer_key(),
            min_counts=self._min_counts.value if self._count_filter.value else -np.inf,
        )
        return self.worker

    def _on_finished(self) -> None:
        self.worker = None
        self._score.enabled = True

    def _on_error(self, error: Exception) -> None:
        message = failure_message(error, "Gene scoring")
        self._status.value = message
        show_error(message)

    def _on_scored(self, result: api.GeneScoresResult) -> None:
        source = self._source
        if source is None:
            return
        adata = source.metadata["adata"]
        self.table = result.write(adata)
        info = adata.uns["annotatability_genes"]
        filtered = (
            f"{info['n_too_few_counts']} with total counts < {info['min_counts']:g} and "
            if np.isfinite(info["min_counts"])
            else ""
        )
        self._status.value = (
            f"{info['n_scored']} genes scored; left out {filtered}{info['n_constant']} "
            "constant ones."
        )
        if info["n_scored"] == 0:
            show_error(f"{self._status.value} Lower 'min total counts' or score raw counts.")
        self._export.enabled = True
        self._fill()

    def shown_table(self) -> pd.DataFrame:
        """The rows the table shows (after the high / low choice)."""
        if self._direction.value == "both" or self.table.empty:
            return self.table
        return self.table[self.table["direction"] == self._direction.value]

    def _fill(self, _event=None) -> None:
        rows = self.shown_table()
        self.view.setRowCount(len(rows))
        for i, record in enumerate(rows.itertuples(index=False)):
            values = (record.gene, record.direction, f"{record.score:.4g}", str(record.rank))
            for j, value in enumerate(values):
                self.view.setItem(i, j, QTableWidgetItem(value))
        self.view.resizeColumnsToContents()

    def _on_row_clicked(self, row: int, _column: int) -> None:
        self.show_gene(str(self.view.item(row, 0).text()))

    def show_gene(self, gene: str) -> Points | None:
        """Show one gene's expression on the tissue (one layer, replaced per gene)."""
        source = self._cells.value
        if source is None:
            return None
        view = cells_view(source)
        try:
            values = gene_values(view.adata, gene, self._layer_key())
        except AnnotatabilityInputError as error:
            show_error(str(error))
            return None
        layer = show_layer(self._viewer, source, expression_layer(view, gene, values))
        layer.visible = True
        self._viewer.layers.selection.active = layer
        return layer

    def export_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the ranked table (all genes, both directions) to ``path`` atomically."""
        if self.table.empty:
            raise AnnotatabilityInputError("No gene scores yet: press 'Score genes' first.")
        return write_csv_atomic(self.table, path, overwrite=overwrite)

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.native, "Export gene scores", "gene_scores.csv", "CSV (*.csv)"
        )
        if path:  # the dialog has already asked before replacing a file
            try:
                written = self.export_csv(path, overwrite=True)
            except AnnotatabilityInputError as error:
                show_error(str(error))
                return
            show_info(f"Gene scores written to {written}.")
