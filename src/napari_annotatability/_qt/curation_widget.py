"""Dock widget: select cells, relabel them, accept suggestions, undo, retrain, export.

Made of four panels (:mod:`napari_annotatability._qt.curation`): :attr:`selection`,
:attr:`edits`, :attr:`retraining` and :attr:`export`. The widget itself follows the
chosen cells layer and its audit model, whose edits (made here or in the review queue)
refresh the panels.
"""

from __future__ import annotations

import logging

import napari
from magicgui.widgets import Label
from napari.layers import Points
from napari.utils.notifications import show_error, show_info

from napari_annotatability._napari.audit_model import AuditModel, audit_of
from napari_annotatability._napari.viewer_sync import announce_edit
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability._qt.curation.edit_panel import EditPanel
from napari_annotatability._qt.curation.export_panel import ExportPanel
from napari_annotatability._qt.curation.retrain_panel import RetrainPanel
from napari_annotatability._qt.curation.selection_panel import SelectionPanel
from napari_annotatability.core.curation import Curation, Edit
from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)


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
        self._model: AuditModel | None = None
        self.selection = SelectionPanel(self)
        self.edits = EditPanel(self, self.selection.selected)
        self.retraining = RetrainPanel(self)
        self.export = ExportPanel(self)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.extend(
            [self._cells, self.selection, self.edits, self.retraining, self.export, self.status]
        )
        self._cells.changed.connect(self._on_cells_changed)
        self.refresh()

    # --- the host of the panels ------------------------------------------------------
    @property
    def viewer(self) -> napari.viewer.Viewer:
        """The napari viewer."""
        return self._viewer

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
        return audit_of(source, self.viewer).curation

    def report(self, message: str, *, error: bool = False, notify: bool = False) -> None:
        """Show ``message`` in the status line; an error or ``notify`` also notifies."""
        self.status.value = message
        if error:
            show_error(message)
        elif notify:
            show_info(message)

    def announce(self, edit: Edit, verb: str) -> None:
        """Show an edit on every layer of the data and tell every widget."""
        source = self.source
        if source is not None:
            announce_edit(self.viewer, audit_of(source, self.viewer), edit, verb)

    # --- following the layer and its audit ------------------------------------------
    def layers_changed(self) -> None:
        """Follow the chosen cells layer."""
        self._follow_source()

    def _on_cells_changed(self, _layer=None) -> None:
        self.edits.target.reset_choices()
        self._follow_source()
        self.edits.update_buttons()

    def _follow_source(self) -> None:
        source = self.source
        model = None if source is None else audit_of(source, self.viewer)
        if model is not self._model:
            self._listen(self._model, connect=False)
            self._listen(model, connect=True)
            self._model = model
        self.selection.follow()
        self.export.follow()

    def release(self) -> None:
        """Stop listening to the viewer and quit a running worker (widget closing)."""
        self.retraining.quit()
        self.selection.unwatch()
        self._listen(self._model, connect=False)
        self._model = None
        super().release()

    def _listen(self, model: AuditModel | None, *, connect: bool) -> None:
        if model is None:
            return
        for signal, slot in (
            (model.events.edited, self.after_edit),
            (model.events.results_changed, self.after_audit),
        ):
            signal.connect(slot) if connect else signal.disconnect(slot)

    def after_audit(self, label_key: str) -> None:
        """Refresh the choices after an audit was written (a suggestion may be new)."""
        self.selection.class_filter.reset_choices()
        self.selection.suggested.reset_choices()
        self.edits.target.reset_choices()
        self.edits.update_buttons()
        self.selection.update_summary()

    def after_edit(self, edit: Edit, verb: str = "done") -> None:
        """Refresh the panels after an edit (made here or in the review queue)."""
        curation = self.curation
        if curation is None:
            return
        what = edit.how if verb == "done" else f"{verb} ({edit.how})"
        self.report(
            f"{what}: {edit.positions.size} cells, {edit.n_changed} relabelled; "
            f"{curation.n_reviewed()} reviewed in all."
        )
        self.selection.class_filter.reset_choices()
        self.selection.suggested.reset_choices()
        self.edits.target.reset_choices()
        self.edits.show_curated(edit)
        self.edits.update_buttons()
        self.selection.update_summary()
