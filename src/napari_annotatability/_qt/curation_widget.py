"""Dock widget: select cells, relabel them, accept suggestions, undo, retrain, export."""

from __future__ import annotations

import logging
from pathlib import Path

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
)
from napari.layers import Points, Shapes
from napari.qt.threading import GeneratorWorker
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog, QMessageBox, QTableWidget, QTableWidgetItem

from napari_annotatability import api
from napari_annotatability._napari.audit_model import AuditModel, audit_of, audited_key
from napari_annotatability._napari.layers import label_colors
from napari_annotatability._napari.results_layers import (
    colours_of,
    curated_colors,
    curated_layer,
)
from napari_annotatability._napari.selection import (
    current_selection,
    layer_positions,
    layers_of,
    rows_of,
    select_cells,
)
from napari_annotatability._napari.viewer_sync import (
    announce_edit,
    cells_view,
    result_layer,
    show_layer,
    show_results,
)
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability._qt.setting_widgets import setting_box
from napari_annotatability._qt.tasks import start_task
from napari_annotatability._qt.training_worker import training_updates
from napari_annotatability.core import anndata_io as io
from napari_annotatability.core.cell_filters import ANY, filter_cells, flag_changes
from napari_annotatability.core.curation import Curation, Edit
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import FLAG_CATEGORIES

logger = logging.getLogger(__name__)

LASSO_ROLE = "lasso"


class CurationWidget(CellsWidget):
    """Curate an annotation: select, relabel, accept suggestions, undo/redo, export.

    Parameters
    ----------
    viewer
        The napari viewer.
    threaded
        Retrain in a worker thread (the default); ``False`` for scripts and tests.
    """

    def __init__(self, viewer: napari.viewer.Viewer, *, threaded: bool = True) -> None:
        super().__init__(viewer)
        self.threaded = threaded
        self.worker: GeneratorWorker | None = None
        self._watched: list[Points] = []
        self._model: AuditModel | None = None

        self._selection = Label(value="")
        self._flag = ComboBox(label="flag", choices=[ANY, *FLAG_CATEGORIES], value=ANY)
        self._label = ComboBox(label="label", choices=self._class_choices)
        self._suggested = ComboBox(label="suggested", choices=self._suggestion_choices)
        self._conf_min = FloatSpinBox(label="conf from", value=0.0, min=0.0, max=1.0, step=0.05)
        self._conf_max = FloatSpinBox(label="conf to", value=1.0, min=0.0, max=1.0, step=0.05)
        self._select = PushButton(text="Select matching cells")
        self._lasso = PushButton(text="Lasso on the tissue")
        self._target = ComboBox(label="relabel to", choices=self._class_choices_only)
        self._new_class = LineEdit(label="or new class", value="")
        self._relabel = PushButton(text="Relabel selected")
        self._accept = PushButton(text="Accept suggestions (selected)")
        self._accept_all = PushButton(text="Accept all Hard-to-learn suggestions")
        self._keep = PushButton(text="Keep as is (mark reviewed)")
        self._undo = PushButton(text="Undo", enabled=False)
        self._redo = PushButton(text="Redo", enabled=False)
        self._epochs = setting_box("epochs", label="retrain epochs")
        self._retrain = PushButton(text="Retrain on curated labels")
        self._cancel = PushButton(text="Cancel retraining", enabled=False)
        self._save = PushButton(text="Save curated AnnData...")
        self._export = PushButton(text="Export table (CSV/TSV)...")
        self._show_curated = CheckBox(label="show curated labels", value=True)
        self._status = Label(value="")
        self.extend(
            [
                self._cells,
                self._selection,
                self._flag,
                self._label,
                self._suggested,
                self._conf_min,
                self._conf_max,
                self._select,
                self._lasso,
                self._target,
                self._new_class,
                self._relabel,
                self._accept,
                self._accept_all,
                self._keep,
                Container(widgets=[self._undo, self._redo], layout="horizontal", labels=False),
                self._show_curated,
                self._epochs,
                Container(widgets=[self._retrain, self._cancel], layout="horizontal", labels=False),
                self._save,
                self._export,
                self._status,
            ]
        )
        for label in (self._selection, self._status):
            label.native.setWordWrap(True)
        self.changes = QTableWidget(0, 0)
        self.changes.setMinimumHeight(120)
        self.changes.setVisible(False)
        self.native.layout().addWidget(self.changes)

        self._cells.changed.connect(self._on_cells_changed)
        self._select.clicked.connect(self.select_matching)
        self._lasso.clicked.connect(self.start_lasso)
        self._relabel.clicked.connect(self.relabel_selected)
        self._accept.clicked.connect(self.accept_selected)
        self._accept_all.clicked.connect(self.accept_all)
        self._keep.clicked.connect(self.keep_selected)
        self._undo.clicked.connect(self.undo)
        self._redo.clicked.connect(self.redo)
        self._retrain.clicked.connect(self.retrain)
        self._cancel.clicked.connect(self.cancel_retrain)
        self._save.clicked.connect(self._ask_save)
        self._export.clicked.connect(self._ask_export)
        self.refresh()

    # --- state ---------------------------------------------------------------------
    @property
    def source(self) -> Points | None:
        """The cells layer being curated."""
        return self._cells.value

    @property
    def curation(self) -> Curation | None:
        """The curation of the chosen cells' annotation (shared with the review queue).

        ``None`` when there is nothing to curate; :meth:`problem` says why.
        """
        try:
            return self._curation()
        except AnnotatabilityInputError:
            return None

    def problem(self) -> str:
        """Why there is no curation (empty when there is one)."""
        try:
            self._curation()
        except AnnotatabilityInputError as error:
            return str(error)
        return ""

    def _curation(self) -> Curation:
        source = self.source
        if source is None:
            raise AnnotatabilityInputError("No cells layer: open data or a sample first.")
        if source.metadata.get("label_key") is None:
            raise AnnotatabilityInputError(
                f"The layer {source.name!r} shows no annotation; open the data with one."
            )
        return audit_of(source, self._viewer).curation

    def release(self) -> None:
        """Stop listening to the viewer and quit a running worker (widget closing)."""
        if self.worker is not None:
            self.worker.quit()
        self._unwatch()
        self._follow(None)
        super().release()

    def _class_choices_only(self, _widget=None) -> list[str]:
        curation = self.curation
        return [] if curation is None else curation.classes

    def _class_choices(self, _widget=None) -> list[str]:
        return [ANY, *self._class_choices_only()]

    def _suggestion_choices(self, _widget=None) -> list[str]:
        return [ANY, "has a suggestion", *self._class_choices_only()]

    def layers_changed(self) -> None:
        """Follow the chosen cells layer."""
        self._watch()
        self._update_selection_label()

    def _on_cells_changed(self, _layer=None) -> None:
        for combo in (self._label, self._suggested, self._target):
            combo.reset_choices()
        self._watch()
        self._update_buttons()
        self._update_selection_label()

    def _follow(self, model: AuditModel | None) -> None:
        """Listen to the edits of ``model`` (made here or in the review queue)."""
        if self._model is not None:
            self._model.events.edited.disconnect(self.after_edit)
        self._model = model
        if model is not None:
            model.events.edited.connect(self.after_edit)

    def _watch(self) -> None:
        """Follow the selection on every layer of the curated AnnData, and its edits."""
        self._unwatch()
        source = self.source
        self._follow(None if source is None else audit_of(source, self._viewer))
        if source is None:
            return
        for layer in layers_of(self._viewer, source.metadata["adata"]):
            layer.selected_data.events.items_changed.connect(self._update_selection_label)
            self._watched.append(layer)

    def _unwatch(self) -> None:
        for layer in self._watched:
            layer.selected_data.events.items_changed.disconnect(self._update_selection_label)
        self._watched = []

    # --- selecting -----------------------------------------------------------------
    def selected(self) -> np.ndarray:
        """obs positions of the selected cells (on the active layer, else any layer)."""
        source = self.source
        if source is None:
            return np.zeros(0, dtype=np.int64)
        return current_selection(self._viewer, source.metadata["adata"])

    def _update_selection_label(self, *_changes) -> None:
        source, chosen = self.source, self.selected()
        if source is None:
            self._selection.value = "No cells layer: open data or a sample."
            return
        if chosen.size == 0:
            self._selection.value = "No cells selected."
            return
        curation = self.curation
        labels = (
            curation.labels(chosen)
            if curation is not None
            else source.metadata["adata"].obs.index[chosen]
        )
        counts = pd.Series(labels, dtype=object).fillna("nan").value_counts()
        breakdown = ", ".join(f"{n} {label}" for label, n in counts.head(6).items())
        more = f", +{len(counts) - 6} more classes" if len(counts) > 6 else ""
        self._selection.value = f"{chosen.size} selected: {breakdown}{more}."

    def select_matching(self) -> np.ndarray:
        """Select the cells matching the flag / label / suggestion / confidence filters."""
        source = self.source
        if source is None:
            return np.zeros(0, dtype=np.int64)
        adata = source.metadata["adata"]
        chosen = filter_cells(
            adata,
            audited_key(source),
            flag=self._flag.value,
            label=self._label.value or ANY,
            suggested=self._suggested.value or ANY,
            conf_range=(self._conf_min.value, self._conf_max.value),
        )
        shown = np.intersect1d(chosen, layer_positions(source))
        select_cells(self._viewer, adata, shown)
        if shown.size == 0:
            show_info("No cell matches these filters.")
        return shown

    def start_lasso(self) -> Shapes:
        """Add (or reuse) a Shapes layer to draw a lasso on; cells inside get selected."""
        for layer in self._viewer.layers:
            if isinstance(layer, Shapes) and layer.metadata.get("role") == LASSO_ROLE:
                lasso = layer
                break
        else:
            lasso = Shapes(
                name="lasso (draw around cells)",
                ndim=2,
                face_color="transparent",
                edge_color="white",
                edge_width=max(float(np.median(self.source.size)) * 0.2, 1e-3)
                if self.source is not None
                else 1,
                metadata={"role": LASSO_ROLE},
            )
            self._viewer.layers.append(lasso)
            lasso.events.data.connect(self._on_lasso_drawn)
        self._viewer.layers.selection.active = lasso
        lasso.mode = "add_polygon_lasso"
        return lasso

    def _on_lasso_drawn(self, event) -> None:
        if getattr(event, "action", "added") not in ("added", None):
            return
        lasso = event.source
        if len(lasso.data):
            self.select_in_polygon(np.asarray(lasso.data[-1])[:, -2:])

    def select_in_polygon(self, vertices: np.ndarray) -> np.ndarray:
        """Select the cells of the chosen layer inside a polygon (napari row, col vertices)."""
        from matplotlib.path import Path as PolygonPath

        source = self.source
        if source is None:
            return np.zeros(0, dtype=np.int64)
        inside = PolygonPath(np.asarray(vertices, dtype=float)).contains_points(
            np.asarray(source.data)[:, -2:]
        )
        chosen = layer_positions(source)[inside]
        select_cells(self._viewer, source.metadata["adata"], chosen)
        return np.sort(chosen)

    # --- editing -------------------------------------------------------------------
    def _edit(self, action) -> Edit | None:
        curation = self.curation
        if curation is None:
            self._status.value = self.problem()
            show_error(self._status.value)
            return None
        try:
            edit = action(curation)
        except AnnotatabilityInputError as error:
            self._status.value = str(error)
            show_error(str(error))
            return None
        announce_edit(self._viewer, audit_of(self.source, self._viewer), edit, "done")
        return edit

    def after_edit(self, edit: Edit, verb: str = "done") -> None:
        """Refresh the layers, buttons and status after an edit (also from the review)."""
        curation = self.curation
        if curation is None:
            return
        what = edit.how if verb == "done" else f"{verb} ({edit.how})"
        self._status.value = (
            f"{what}: {edit.positions.size} cells, {edit.n_changed} relabelled; "
            f"{curation.n_reviewed()} reviewed in all."
        )
        for combo in (self._label, self._suggested, self._target):
            combo.reset_choices()
        self.show_curated(edit)
        self._update_buttons()
        self._update_selection_label()

    def relabel_selected(self) -> Edit | None:
        """Give the selected cells the class typed in (else the one chosen)."""
        if self.curation is None:
            return self._edit(None)
        label = self._new_class.value.strip() or self._target.value
        if not label:
            show_error("Choose a class to relabel to, or type a new one.")
            return None
        chosen = self.selected()
        edit = self._edit(lambda c: c.relabel(chosen, label))
        if edit is not None:
            self._new_class.value = ""
        return edit

    def accept_selected(self) -> Edit | None:
        """Accept the suggested labels of the selected cells."""
        chosen = self.selected()
        if chosen.size == 0:
            show_error("No cells selected: select cells first.")
            return None
        return self._edit(lambda c: c.accept_suggestions(chosen))

    def accept_all(self) -> Edit | None:
        """Accept the suggestions of every Hard-to-learn cell at once."""
        return self._edit(lambda c: c.accept_suggestions())

    def keep_selected(self) -> Edit | None:
        """Mark the selected cells reviewed, keeping their labels."""
        chosen = self.selected()
        return self._edit(lambda c: c.keep(chosen))

    def undo(self) -> Edit | None:
        """Undo the last edit."""
        curation = self.curation
        edit = None if curation is None else curation.undo()
        if edit is not None:
            announce_edit(self._viewer, audit_of(self.source, self._viewer), edit, "undone")
        return edit

    def redo(self) -> Edit | None:
        """Redo the last undone edit."""
        curation = self.curation
        edit = None if curation is None else curation.redo()
        if edit is not None:
            announce_edit(self._viewer, audit_of(self.source, self._viewer), edit, "redone")
        return edit

    def _update_buttons(self) -> None:
        curation = self.curation
        self._undo.enabled = curation is not None and curation.can_undo
        self._redo.enabled = curation is not None and curation.can_redo

    def show_curated(self, edit: Edit | None = None) -> Points | None:
        """Show (or refresh) the layer of curated labels.

        After an ``edit`` only the points it touched are updated (a few milliseconds
        whatever the number of cells); otherwise the layer is rebuilt.
        """
        source, curation = self.source, self.curation
        if source is None or curation is None or not self._show_curated.value:
            return None
        colors = label_colors(curation.adata, curation.label_key)
        layer = result_layer(self._viewer, source, "curated")
        if edit is not None and layer is not None and len(layer.data) == len(source.data):
            rows = rows_of(layer, edit.positions)
            labels = curation.labels(layer_positions(layer)[rows])
            layer.features.loc[rows, curation.curated] = [
                "nan" if label is None else label for label in labels
            ]
            face = np.array(layer.face_color)
            face[rows] = colours_of(
                labels, curated_colors(curation.adata, curation.curated, colors)
            )
            layer.face_color = face
            return layer
        data = curated_layer(cells_view(source), curation.curated, colors)
        return show_layer(self._viewer, source, data)

    # --- retraining ----------------------------------------------------------------
    def retrain(self) -> GeneratorWorker | None:
        """Train on the curated labels and tabulate how the flags changed."""
        source, curation = self.source, self.curation
        if source is None or curation is None:
            show_error("Nothing to retrain: choose a curated cells layer.")
            return None
        if io.flag_key(curation.label_key) not in curation.adata.obs:
            show_error("Train on the original annotation first (Audit annotation).")
            return None
        # train as the audit being curated did (its input, learning rate, widths, ...)
        settings = {
            **api.stored_training_settings(curation.adata, curation.label_key),
            "epochs": self._epochs.value,
        }
        self._status.value = f"Retraining on {curation.curated}..."
        self._retrain.enabled = False
        self._cancel.enabled = self.threaded
        self.worker = start_task(
            training_updates,
            curation.adata,
            curation.curated,
            threaded=self.threaded,
            progress={"desc": f"Retraining on {curation.curated}"},
            returned=self._on_retrained,
            errored=lambda error: show_error(str(error)),
            finished=self._on_retrain_finished,
            aborted=self._on_retrain_cancelled,
            **settings,
        )
        return self.worker

    def cancel_retrain(self) -> None:
        """Stop the retraining at the next epoch; nothing of it is written."""
        if self.worker is not None:
            self._status.value = "Cancelling the retraining..."
            self.worker.quit()

    def _on_retrain_cancelled(self) -> None:
        curation = self.curation
        what = "" if curation is None else f" of {curation.curated!r}"
        self._status.value = f"Retraining cancelled: no audit{what} was written."

    def _on_retrain_finished(self) -> None:
        self.worker = None
        self._retrain.enabled = True
        self._cancel.enabled = False

    def _on_retrained(self, result: api.AnnotatabilityResult) -> None:
        source, curation = self.source, self.curation
        if source is None or curation is None:
            return
        result.write(curation.adata)
        source.metadata["curating"] = curation.label_key
        source.metadata["label_key"] = curation.curated
        show_results(self._viewer, source)
        table = flag_changes(
            curation.adata, io.flag_key(curation.label_key), io.flag_key(curation.curated)
        )
        curation.adata.uns[f"{curation.curated}_flag_changes"] = table
        self._show_changes(table)
        moved = int(table.to_numpy().sum() - np.trace(table.to_numpy()))
        self._status.value = (
            f"Retrained on {curation.curated}: {moved} cells changed flag (table below)."
        )

    def _show_changes(self, table: pd.DataFrame) -> None:
        self.changes.setVisible(True)
        self.changes.setRowCount(len(table.index))
        self.changes.setColumnCount(len(table.columns))
        self.changes.setHorizontalHeaderLabels([f"now {c}" for c in table.columns])
        self.changes.setVerticalHeaderLabels([f"was {r}" for r in table.index])
        for i in range(len(table.index)):
            for j in range(len(table.columns)):
                self.changes.setItem(i, j, QTableWidgetItem(str(int(table.iat[i, j]))))
        self.changes.resizeColumnsToContents()

    # --- export --------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Save the curated AnnData (``.h5ad`` or ``.zarr``) atomically.

        Refuses to replace the file the data were opened from unless ``overwrite``.
        """
        source = self.source
        if source is None:
            raise AnnotatabilityInputError("No cells layer to save.")
        return io.save_curated(
            source.metadata["adata"],
            path,
            opened_from=source.metadata.get("source_path"),
            overwrite=overwrite,
        )

    def export_table(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the curation table (:func:`~napari_annotatability.api.export_curation`)."""
        curation = self.curation
        if curation is None:
            raise AnnotatabilityInputError("No annotation to export.")
        return api.export_curation(curation.adata, curation.label_key, path, overwrite=overwrite)

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.native,
            "Save curated AnnData",
            "curated.h5ad",
            "AnnData (*.h5ad *.zarr)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return
        overwrite = False
        opened = self.source.metadata.get("source_path") if self.source else None
        same = opened is not None and Path(path).resolve() == Path(opened).resolve()
        if same or Path(path).exists():
            what = "the file these data were opened from" if same else "an existing file"
            answer = QMessageBox.question(
                self.native, "Replace file?", f"{path} is {what}. Replace it?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            overwrite = True
        self._report(lambda: self.save(path, overwrite=overwrite), "Curated AnnData saved to")

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.native, "Export curation table", "curation.csv", "CSV (*.csv);;TSV (*.tsv)"
        )
        if path:  # the dialog has asked before replacing a file
            self._report(lambda: self.export_table(path, overwrite=True), "Table written to")

    def _report(self, write, what: str) -> None:
        try:
            written = write()
        except AnnotatabilityInputError as error:
            show_error(str(error))
            return
        self._status.value = f"{what} {written}."
        show_info(self._status.value)
