"""Dock widget: build the trainability-aware graph into the AnnData, draw its edges."""

from __future__ import annotations

import logging

import napari
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from napari.layers import Points
from napari.qt.threading import FunctionWorker
from napari.utils.notifications import show_error

from napari_annotatability import api
from napari_annotatability._napari.results_layers import graph_edges_layer
from napari_annotatability._napari.selection import current_selection
from napari_annotatability._napari.viewer_sync import (
    cells_view,
    result_layer,
    show_layer,
)
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability._qt.tasks import failure_message, start_task

logger = logging.getLogger(__name__)


class GraphWidget(CellsWidget):
    """Build the trainability-aware kNN graph (scanpy neighbours layout) and show it.

    Parameters
    ----------
    viewer
        The napari viewer.
    threaded
        Build in a worker thread (the default); ``False`` for scripts and tests.
    """

    def __init__(self, viewer: napari.viewer.Viewer, *, threaded: bool = True) -> None:
        super().__init__(viewer)
        self.threaded = threaded
        self.worker: FunctionWorker | None = None
        self._source: Points | None = None

        self._use_rep = ComboBox(label="embedding", choices=self._rep_choices)
        self._alpha = FloatSpinBox(label="alpha", value=0.9, min=0.0, max=1.0, step=0.05)
        self._k = SpinBox(label="neighbours (k)", value=15, min=1, max=1000)
        self._key = LineEdit(label="key added", value="trainability")
        self._overwrite = CheckBox(label="replace a graph of that key", value=True)
        self._edges = CheckBox(label="show edges on the tissue", value=False)
        self._edges.tooltip = (
            "The graph joins cells alike in expression and confidence, often far apart "
            "in the tissue: with cells selected, only their edges are drawn."
        )
        self._build = PushButton(text="Build graph")
        self._status = Label(value="")
        self.extend(
            [
                self._cells,
                self._use_rep,
                self._alpha,
                self._k,
                self._key,
                self._overwrite,
                self._edges,
                self._build,
                self._status,
            ]
        )
        self._status.native.setWordWrap(True)
        self._alpha.tooltip = "Weight of the embedding distance against the confidence ranks."
        self._use_rep.tooltip = "obsm key; X_pca is computed with scanpy when missing."
        self._cells.changed.connect(lambda _layer: self._use_rep.reset_choices())
        self._build.clicked.connect(self.build)
        self._edges.changed.connect(self._on_edges_toggled)
        self.refresh()

    def release(self) -> None:
        """Quit a running worker and stop listening to the viewer (widget closing)."""
        if self.worker is not None:
            self.worker.quit()
        super().release()

    def _rep_choices(self, _widget=None) -> list[str]:
        layer = self._cells.value
        keys = [] if layer is None else list(layer.metadata["adata"].obsm)
        keys = [k for k in keys if k != "spatial"]
        return keys if "X_pca" in keys else ["X_pca", *keys]

    def layers_changed(self) -> None:
        """Follow the chosen cells layer."""
        self._use_rep.reset_choices()

    def build(self) -> FunctionWorker | None:
        """Compute the graph (in a worker when threaded) and write it on the main thread."""
        source, problem = self.audited_cells()
        if source is None:
            self._status.value = problem
            show_error(problem)
            return None
        key = self._key.value.strip()
        if not key:
            show_error("Give the graph a key (e.g. 'trainability').")
            return None
        self._source = source
        kwargs = {
            "label_key": source.metadata["label_key"],
            "use_rep": self._use_rep.value,
            "alpha": self._alpha.value,
            "k": self._k.value,
            "key_added": key,
            "overwrite": self._overwrite.value,
        }
        adata = source.metadata["adata"]
        self._status.value = "Building the graph..."
        self._build.enabled = False
        self.worker = start_task(
            api.compute_trainability_graph,
            adata,
            threaded=self.threaded,
            progress={"desc": "Trainability graph"},
            returned=self._on_result,
            errored=self._on_error,
            finished=self._on_finished,
            **kwargs,
        )
        return self.worker

    def _on_finished(self) -> None:
        self.worker = None
        self._build.enabled = True

    def _on_result(self, result: api.GraphResult) -> None:
        source = self._source
        if source is None:
            return
        result.write(source.metadata["adata"])
        params = result.uns["params"]
        self._status.value = (
            f"Graph written to obsp['{result.uns['connectivities_key']}'] and "
            f"uns['{result.key_added}'] (k={params['n_neighbors']}, alpha={params['alpha']:g}); "
            f"scanpy uses it with neighbors_key='{result.key_added}'."
        )
        if self._edges.value:
            self.show_edges()

    def _on_error(self, error: Exception) -> None:
        message = failure_message(error, "Graph")
        self._status.value = message
        show_error(message)

    def show_edges(self):
        """Draw the edges of the graph under the key given, on the chosen cells."""
        source = self._cells.value
        if source is None:
            return None
        adata = source.metadata["adata"]
        key = self._key.value.strip()
        if key not in adata.uns or "connectivities_key" not in adata.uns[key]:
            show_error(f"No graph under uns[{key!r}] yet: press 'Build graph' first.")
            return None
        connectivities = adata.obsp[adata.uns[key]["connectivities_key"]]
        around = current_selection(self._viewer, adata)
        around = around if around.size else None
        data = graph_edges_layer(cells_view(source), connectivities, key, around)
        if data is None:
            show_error("The graph has no edge between the cells shown.")
            return None
        shown = "all edges" if around is None else f"the edges of {around.size} selected cells"
        self._status.value = f"{self._status.value} Showing {shown}.".strip()
        return show_layer(self._viewer, source, data)

    def _on_edges_toggled(self, show: bool) -> None:
        source = self._cells.value
        if source is None:
            return
        existing = result_layer(self._viewer, source, "graph")
        built = self._key.value.strip() in source.metadata["adata"].uns
        if show and built:
            self.show_edges()  # redrawn: the selection may have changed
        elif existing is not None:
            existing.visible = False
