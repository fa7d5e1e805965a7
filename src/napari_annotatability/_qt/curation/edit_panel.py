"""Edit the curated labels: relabel, accept suggestions, mark reviewed, undo, redo."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, LineEdit, PushButton
from napari.layers import Points

from napari_annotatability._napari.layers import label_colors
from napari_annotatability._napari.results_layers import colours_of, curated_colors, curated_layer
from napari_annotatability._napari.selection import layer_positions, rows_of
from napari_annotatability._napari.viewer_sync import cells_view, result_layer, show_layer
from napari_annotatability._qt.curation.host import CurationHost
from napari_annotatability.core.curation import Curation, Edit
from napari_annotatability.core.errors import AnnotatabilityInputError


class EditPanel(Container):
    """The edit buttons, undo / redo and the layer of curated labels.

    Parameters
    ----------
    host
        The curation widget.
    selected
        Gives the obs positions of the selected cells.
    """

    def __init__(self, host: CurationHost, selected: Callable[[], np.ndarray]) -> None:
        super().__init__(labels=True)
        self._host = host
        self._selected = selected
        self.target = ComboBox(label="relabel to", choices=self._classes)
        self.new_class = LineEdit(label="or new class", value="")
        relabel = PushButton(text="Relabel selected")
        accept = PushButton(text="Accept suggestions (selected)")
        accept_all = PushButton(text="Accept all Hard-to-learn suggestions")
        keep = PushButton(text="Keep as is (mark reviewed)")
        self.undo_button = PushButton(text="Undo", enabled=False)
        self.redo_button = PushButton(text="Redo", enabled=False)
        self.show_curated_labels = CheckBox(label="show curated labels", value=True)
        history = Container(
            widgets=[self.undo_button, self.redo_button], layout="horizontal", labels=False
        )
        self.extend([self.target, self.new_class, relabel, accept, accept_all, keep])
        self.extend([history, self.show_curated_labels])
        relabel.clicked.connect(self.relabel_selected)
        accept.clicked.connect(self.accept_selected)
        accept_all.clicked.connect(self.accept_all)
        keep.clicked.connect(self.keep_selected)
        self.undo_button.clicked.connect(self.undo)
        self.redo_button.clicked.connect(self.redo)

    def _classes(self, _widget=None) -> list[str]:
        curation = self._host.curation
        return [] if curation is None else curation.classes

    def _edit(self, action: Callable[[Curation], Edit]) -> Edit | None:
        curation = self._host.curation
        if curation is None:
            self._host.report(self._host.problem(), error=True)
            return None
        try:
            edit = action(curation)
        except AnnotatabilityInputError as error:
            self._host.report(str(error), error=True)
            return None
        self._host.announce(edit, "done")
        return edit

    def relabel_selected(self) -> Edit | None:
        """Give the selected cells the class typed in (else the one chosen)."""
        if self._host.curation is None:
            self._host.report(self._host.problem(), error=True)
            return None
        label = self.new_class.value.strip() or self.target.value
        if not label:
            self._host.report("Choose a class to relabel to, or type a new one.", error=True)
            return None
        chosen = self._selected()
        edit = self._edit(lambda c: c.relabel(chosen, label))
        if edit is not None:
            self.new_class.value = ""
        return edit

    def accept_selected(self) -> Edit | None:
        """Accept the suggested labels of the selected cells."""
        chosen = self._selected()
        if chosen.size == 0:
            self._host.report("No cells selected: select cells first.", error=True)
            return None
        return self._edit(lambda c: c.accept_suggestions(chosen))

    def accept_all(self) -> Edit | None:
        """Accept the suggestions of every Hard-to-learn cell at once."""
        return self._edit(lambda c: c.accept_suggestions())

    def keep_selected(self) -> Edit | None:
        """Mark the selected cells reviewed, keeping their labels."""
        chosen = self._selected()
        return self._edit(lambda c: c.keep(chosen))

    def undo(self) -> Edit | None:
        """Undo the last edit."""
        curation = self._host.curation
        edit = None if curation is None else curation.undo()
        if edit is not None:
            self._host.announce(edit, "undone")
        return edit

    def redo(self) -> Edit | None:
        """Redo the last undone edit."""
        curation = self._host.curation
        edit = None if curation is None else curation.redo()
        if edit is not None:
            self._host.announce(edit, "redone")
        return edit

    def update_buttons(self) -> None:
        """Enable undo / redo when there is something to undo / redo."""
        curation = self._host.curation
        self.undo_button.enabled = curation is not None and curation.can_undo
        self.redo_button.enabled = curation is not None and curation.can_redo

    def show_curated(self, edit: Edit | None = None) -> Points | None:
        """Show (or refresh) the layer of curated labels.

        After an ``edit`` only the points it touched are recoloured (a few milliseconds
        whatever the number of cells; their labels are already in the features);
        otherwise the layer is rebuilt.
        """
        host = self._host
        source, curation = host.source, host.curation
        if source is None or curation is None or not self.show_curated_labels.value:
            return None
        colors = label_colors(curation.adata, curation.label_key)
        layer = result_layer(host.viewer, source, "curated")
        if edit is not None and layer is not None and len(layer.data) == len(source.data):
            rows = rows_of(layer, edit.positions)
            labels = curation.labels(layer_positions(layer)[rows])
            face = np.array(layer.face_color)
            face[rows] = colours_of(
                labels, curated_colors(curation.adata, curation.curated, colors)
            )
            layer.face_color = face
            return layer
        data = curated_layer(cells_view(source), curation.curated, colors)
        return show_layer(host.viewer, source, data)
