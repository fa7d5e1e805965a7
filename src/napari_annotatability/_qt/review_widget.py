"""Dock widget: step through the flagged cells by keyboard, most likely wrong first.

Keys (while a review runs): N next, B back, A accept the suggestion, K keep the label,
R relabel to the class chosen, U undo, Shift+U redo. Each decision moves on to the next
cell not yet reviewed.
"""

from __future__ import annotations

import logging

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
from napari.layers import Points
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence, QShortcut

from napari_annotatability._napari.audit_model import AuditModel, audit_of
from napari_annotatability._napari.layers import world_coordinates, world_point_size
from napari_annotatability._napari.selection import layer_positions, select_cells
from napari_annotatability._napari.viewer_sync import announce_edit, sections_of
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability.core import keys
from napari_annotatability.core.curation import Curation
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.review import Neighbourhood, ReviewQueue
from napari_annotatability.core.scores import AMBIGUOUS, HARD

logger = logging.getLogger(__name__)

KEYS = {
    "next": "N",
    "previous": "B",
    "accept": "A",
    "keep": "K",
    "relabel": "R",
    "undo": "U",
    "redo": "Shift+U",
}
#: ``metadata["role"]`` of the ring that marks the cell under review.
MARKER_ROLE = "review marker"
#: The ring: its colour, its size in cells, and its least size on screen (pixels).
MARKER_COLOR, MARKER_CELLS, MARKER_MIN_PIXELS = "#00e5ff", 2.5, 28

#: Review queues: name -> (flag column maker, flags in the queue).
_QUEUES = {
    "Hard-to-learn": (keys.flag_key, (HARD,)),
    "Hard-to-learn and Ambiguous": (keys.flag_key, (HARD, AMBIGUOUS)),
    "Hard-to-learn by training dynamics": (keys.dynamics_flag_key, (HARD,)),
}


def review_order(obs, label_key: str) -> np.ndarray:
    """Ascending review order: minus the mislabel score, else the confidence."""
    key = keys.mislabel_key(label_key)
    if key in obs.columns:
        return -obs[key].to_numpy(dtype=float)
    return obs[keys.conf_key(label_key)].to_numpy(dtype=float)


class ReviewWidget(CellsWidget):
    """Review the flagged cells one by one, with the camera on each.

    Parameters
    ----------
    viewer
        The napari viewer.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self.queue: ReviewQueue | None = None
        self._neighbours: Neighbourhood | None = None
        self._source: Points | None = None
        self._model: AuditModel | None = None
        self.marker: Points | None = None

        self._which = ComboBox(label="review", choices=list(_QUEUES), value="Hard-to-learn")
        self._sections = CheckBox(
            text="all sections",
            value=False,
            tooltip="Review the cells of every section (layer) of these data, not just this one.",
        )
        self._target = ComboBox(label="relabel to (R)", choices=self._classes)
        self._start = PushButton(text="Start review")
        self._stop = PushButton(text="Stop", enabled=False)
        self._progress = Label(value="")
        self._cell = Label(value="")
        keys = ", ".join(f"{key} {action}" for action, key in KEYS.items())
        self._help = Label(value=f"Keys: {keys}.")
        self.extend(
            [
                self._cells,
                self._which,
                self._sections,
                self._target,
                Container(widgets=[self._start, self._stop], layout="horizontal", labels=False),
                self._progress,
                self._cell,
                self._help,
            ]
        )
        for label in (self._cell, self._help, self._progress):
            label.native.setWordWrap(True)
        actions = {
            "next": self.next,
            "previous": self.previous,
            "accept": self.accept,
            "keep": self.keep,
            "relabel": self.relabel,
            "undo": self.undo,
            "redo": self.redo,
        }
        # children of this widget: active while its window (napari's, when docked) is,
        # and gone with the widget
        self.shortcuts: dict[str, QShortcut] = {}
        for action, key in KEYS.items():
            shortcut = QShortcut(QKeySequence(key), self.native)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.setEnabled(False)
            shortcut.activated.connect(actions[action])
            self.shortcuts[action] = shortcut
        self._start.clicked.connect(self.start)
        self._stop.clicked.connect(self.stop)
        self._cells.changed.connect(lambda _layer: self._target.reset_choices())
        self.refresh()

    def layers_changed(self) -> None:
        """Follow the chosen cells layer."""
        self._target.reset_choices()

    def _classes(self, _widget=None) -> list[str]:
        curation = self.curation
        return [] if curation is None else curation.classes

    @property
    def curation(self) -> Curation | None:
        """The curation the decisions go to (shared with the curation widget)."""
        source = self._source or self._cells.value
        model = None if source is None else audit_of(source, self._viewer)
        if model is None:
            return None
        try:
            return model.curation
        except AnnotatabilityInputError:
            return None

    # --- the queue -----------------------------------------------------------------
    def start(self) -> ReviewQueue | None:
        """Queue the flagged cells of the chosen layer, most likely wrong first.

        By the mislabel score of the label evidence, or (audits without it) from the
        least confident cell up.
        """
        source = self._cells.value
        if source is None:
            show_error("No cells: open data or a sample first.")
            return None
        self._source = source
        curation = self.curation
        if curation is None:
            show_error(
                f"The layer {source.name!r} shows no annotation to review; open the data with one."
            )
            self._source = None
            return None
        adata = source.metadata["adata"]
        column, wanted_flags = _QUEUES[self._which.value]
        flags = adata.obs.get(column(curation.label_key))
        if flags is None:
            show_error("No flags yet: train in 'Audit annotation' first.")
            self._source = None
            return None
        shown, coords = self._shown_cells(source)
        wanted = np.isin(flags.astype(object).to_numpy()[shown], wanted_flags)
        positions = shown[wanted]
        try:
            order = review_order(adata.obs, curation.label_key)[positions]
            self.queue = ReviewQueue(positions, order)
        except AnnotatabilityInputError as error:
            hint = ""
            if AMBIGUOUS not in wanted_flags and (flags == AMBIGUOUS).any():
                hint = " Choose 'Hard-to-learn and Ambiguous' to review the Ambiguous cells."
            show_error(f"{error}{hint}")
            self._source = None
            return None
        self._neighbours = Neighbourhood(coords)  # rows = shown
        self._shown, self._coords = shown, coords
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(True)
        self._start.enabled, self._stop.enabled = False, True
        self._model = audit_of(source, self._viewer)
        self._model.events.results_changed.connect(self._on_new_audit)
        reviewed = adata.obs[curation.reviewed].to_numpy(dtype=bool)
        if reviewed[self.queue.current]:
            self.queue.next_unreviewed(reviewed)
        self.show_current()
        return self.queue

    def _shown_cells(self, source: Points) -> tuple[np.ndarray, np.ndarray]:
        """obs positions (sorted) and napari coordinates of the cells to review.

        The chosen layer's, or with "all sections" those of every cells layer of its data.
        """
        layers = sections_of(self._viewer, source) if self._sections.value else [source]
        positions = np.concatenate([layer_positions(layer) for layer in layers])
        coords = np.concatenate([world_coordinates(layer) for layer in layers])
        order = np.argsort(positions, kind="stable")
        return positions[order], coords[order]

    def _on_new_audit(self, label_key: str) -> None:
        """A new audit replaced the flags the queue was made of: end the review."""
        self.stop()
        self._cell.value = (
            f"A new audit of {label_key!r} was written: press Start to review its flags."
        )

    def stop(self) -> None:
        """End the review (the decisions stay)."""
        if self._model is not None:
            self._model.events.results_changed.disconnect(self._on_new_audit)
            self._model = None
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(False)
        self.queue = None
        self._source = None
        self._unmark()
        self._start.enabled, self._stop.enabled = True, False
        self._cell.value = ""

    def show_current(self) -> None:
        """Centre the camera on the current cell, ring it, select it and describe it."""
        queue, curation, source = self.queue, self.curation, self._source
        if queue is None or curation is None or source is None:
            return
        position = queue.current
        adata = curation.adata
        obs = adata.obs
        row = int(np.searchsorted(self._shown, position))
        centre = self._coords[row]
        camera = self._viewer.scene.camera
        camera.center = tuple(centre)
        size = world_point_size(source)
        camera.zoom = self._zoom_for(size)
        self._mark(centre, size)
        select_cells(self._viewer, adata, np.array([position]))
        labels = curation.labels(self._shown)
        counts = self._neighbours.label_counts(row, labels)
        neighbours = ", ".join(f"{n} {label}" for label, n in counts) or "none"
        suggestion = obs.get(keys.suggestion_key(curation.label_key))
        suggested = None if suggestion is None else suggestion.astype(object).iloc[position]
        cell = obs.iloc[position]
        score_key = keys.mislabel_key(curation.label_key)
        score = f"mislabel score {cell[score_key]:.3f}, " if score_key in obs.columns else ""
        key = curation.label_key
        self._cell.value = (
            f"{adata.obs_names[position]}: label {cell[key]}, "
            f"curated {curation.labels([position])[0]}; {score}conf "
            f"{cell[keys.conf_key(key)]:.3f}, var {cell[keys.var_key(key)]:.3f}, "
            f"{cell[keys.flag_key(key)]}; "
            f"suggestion {suggested if suggested is not None else 'none'}; "
            f"neighbours: {neighbours}."
        )
        self._update_progress()

    def _mark(self, centre: np.ndarray, size: float) -> None:
        """Ring the cell under review, at least :data:`MARKER_MIN_PIXELS` wide at any zoom."""
        marker = self.marker
        if marker is None or marker not in self._viewer.layers:
            active = self._viewer.layers.selection.active
            marker = Points(
                np.atleast_2d(centre),
                name="cell under review",
                symbol="ring",
                face_color=MARKER_COLOR,
                border_width=0,
                size=MARKER_CELLS * size,
                canvas_size_limits=(MARKER_MIN_PIXELS, 10_000),
                metadata={"role": MARKER_ROLE},
            )
            self._viewer.layers.append(marker)
            self._viewer.layers.selection.active = active  # the cells stay the active layer
            self.marker = marker
        else:
            marker.data = np.atleast_2d(centre)
            marker.size = MARKER_CELLS * size

    def _unmark(self) -> None:
        if self.marker is not None and self.marker in self._viewer.layers:
            self._viewer.layers.remove(self.marker)
        self.marker = None

    def _zoom_for(self, size: float) -> float:
        """A zoom showing about 15 cells across the canvas."""
        width = max(self._viewer.canvas.size[-1], 100)
        return width / (15 * max(size, 1e-9))

    def _update_progress(self) -> None:
        queue, curation = self.queue, self.curation
        if queue is None or curation is None:
            return
        done = curation.n_reviewed(queue.positions)
        self._progress.value = (
            f"{done} of {len(queue)} reviewed; cell {queue.index + 1} of {len(queue)}."
        )

    # --- decisions -----------------------------------------------------------------
    def next(self) -> None:
        """Go to the next cell."""
        if self.queue is not None:
            self.queue.next()
            self.show_current()

    def previous(self) -> None:
        """Go back to the previous cell."""
        if self.queue is not None:
            self.queue.previous()
            self.show_current()

    def _decide(self, action) -> None:
        queue, curation = self.queue, self.curation
        if queue is None or curation is None:
            return
        try:
            edit = action(curation, np.array([queue.current]))
        except AnnotatabilityInputError as error:
            show_error(str(error))
            return
        self._after_edit(edit, "done")
        queue.next_unreviewed(curation.adata.obs[curation.reviewed].to_numpy(dtype=bool))
        self.show_current()

    def accept(self) -> None:
        """Accept the current cell's suggested label and move on."""
        self._decide(lambda c, cell: c.accept_suggestions(cell))

    def keep(self) -> None:
        """Keep the current cell's label (mark it reviewed) and move on."""
        self._decide(lambda c, cell: c.keep(cell))

    def relabel(self) -> None:
        """Relabel the current cell to the class chosen and move on."""
        if not self._target.value:
            show_error("Choose the class to relabel to.")
            return
        self._decide(lambda c, cell: c.relabel(cell, self._target.value))

    def undo(self) -> None:
        """Undo the last decision and go back to its cell."""
        curation = self.curation
        edit = None if curation is None else curation.undo()
        self._after_edit(edit, "undone")
        if edit is not None and self.queue is not None:
            hits = np.flatnonzero(np.isin(self.queue.positions, edit.positions))
            if hits.size:
                self.queue.index = int(hits[0])
            self.show_current()

    def redo(self) -> None:
        """Redo the last undone decision."""
        curation = self.curation
        edit = None if curation is None else curation.redo()
        self._after_edit(edit, "redone")
        self.show_current()

    def _after_edit(self, edit, verb: str) -> None:
        source = self._source or self._cells.value
        if edit is not None and source is not None:
            announce_edit(self._viewer, audit_of(source, self._viewer), edit, verb)
