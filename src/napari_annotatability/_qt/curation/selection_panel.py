"""Choose cells to curate: by flag, label, suggestion and confidence, or with a lasso."""

from __future__ import annotations

import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton
from napari.layers import Shapes
from napari.utils.notifications import show_info

from napari_annotatability._napari.audit_model import AuditModel, audit_of, audited_key
from napari_annotatability._napari.layers import world_coordinates
from napari_annotatability._napari.selection import (
    current_selection,
    layer_positions,
    select_cells,
)
from napari_annotatability._napari.viewer_sync import sections_of
from napari_annotatability._qt.curation.host import CurationHost
from napari_annotatability.core.cell_filters import ANY, filter_cells
from napari_annotatability.core.scores import FLAG_CATEGORIES

#: ``metadata["role"]`` of the Shapes layer the lasso is drawn on.
LASSO_ROLE = "lasso"


class SelectionPanel(Container):
    """Filters, *Select matching cells*, the lasso and a summary of the selection."""

    def __init__(self, host: CurationHost) -> None:
        super().__init__(labels=True)
        self._host = host
        self._model: AuditModel | None = None
        self.summary = Label(value="")
        self.flag = ComboBox(label="flag", choices=[ANY, *FLAG_CATEGORIES], value=ANY)
        self.class_filter = ComboBox(label="label", choices=self._class_choices)
        self.suggested = ComboBox(label="suggested", choices=self._suggestion_choices)
        self.conf_min = FloatSpinBox(label="conf from", value=0.0, min=0.0, max=1.0, step=0.05)
        self.conf_max = FloatSpinBox(label="conf to", value=1.0, min=0.0, max=1.0, step=0.05)
        self.all_sections = CheckBox(
            text="all sections",
            value=False,
            tooltip="Select in every section (layer) of these data, not just this one.",
        )
        select = PushButton(text="Select matching cells")
        lasso = PushButton(text="Lasso on the tissue")
        self.extend([self.summary, self.flag, self.class_filter, self.suggested])
        self.extend([self.conf_min, self.conf_max, self.all_sections, select, lasso])
        self.summary.native.setWordWrap(True)
        select.clicked.connect(self.select_matching)
        lasso.clicked.connect(self.start_lasso)

    def _classes(self) -> list[str]:
        curation = self._host.curation
        return [] if curation is None else curation.classes

    def _class_choices(self, _widget=None) -> list[str]:
        return [ANY, *self._classes()]

    def _suggestion_choices(self, _widget=None) -> list[str]:
        return [ANY, "has a suggestion", *self._classes()]

    def follow(self) -> None:
        """Follow the chosen cells layer: its classes and the selection on its layers."""
        self.class_filter.reset_choices()
        self.suggested.reset_choices()
        self.unwatch()
        source = self._host.source
        model = None if source is None else audit_of(source, self._host.viewer)
        if model is not None:
            model.follow_selection(self._host.viewer)
            model.events.selection.connect(self.update_summary)
            self._model = model
        self.update_summary()

    def unwatch(self) -> None:
        """Stop following the selection."""
        if self._model is not None:
            self._model.events.selection.disconnect(self.update_summary)
            self._model = None

    def selected(self) -> np.ndarray:
        """obs positions of the selected cells (on the active layer, else any layer)."""
        source = self._host.source
        if source is None:
            return np.zeros(0, dtype=np.int64)
        return current_selection(self._host.viewer, source.metadata["adata"])

    def update_summary(self, *_changes) -> None:
        """Say how many cells are selected, and of which classes."""
        source, chosen = self._host.source, self.selected()
        if source is None:
            self.summary.value = "No cells layer: open data or a sample."
            return
        if chosen.size == 0:
            self.summary.value = "No cells selected."
            return
        curation = self._host.curation
        labels = (
            curation.labels(chosen)
            if curation is not None
            else source.metadata["adata"].obs.index[chosen]
        )
        counts = pd.Series(labels, dtype=object).fillna("nan").value_counts()
        breakdown = ", ".join(f"{n} {label}" for label, n in counts.head(6).items())
        more = f", +{len(counts) - 6} more classes" if len(counts) > 6 else ""
        self.summary.value = f"{chosen.size} selected: {breakdown}{more}."

    def select_matching(self) -> np.ndarray:
        """Select the cells matching the flag / label / suggestion / confidence filters."""
        source = self._host.source
        if source is None:
            return np.zeros(0, dtype=np.int64)
        adata = source.metadata["adata"]
        chosen = filter_cells(
            adata,
            audited_key(source),
            flag=self.flag.value,
            label=self.class_filter.value or ANY,
            suggested=self.suggested.value or ANY,
            conf_range=(self.conf_min.value, self.conf_max.value),
        )
        layers = sections_of(self._host.viewer, source) if self.all_sections.value else [source]
        shown = np.intersect1d(chosen, np.concatenate([layer_positions(x) for x in layers]))
        select_cells(self._host.viewer, adata, shown)
        if shown.size == 0:
            show_info("No cell matches these filters.")
        return shown

    def start_lasso(self) -> Shapes:
        """Add (or reuse) a Shapes layer to draw a lasso on; cells inside get selected."""
        viewer, source = self._host.viewer, self._host.source
        for layer in viewer.layers:
            if isinstance(layer, Shapes) and layer.metadata.get("role") == LASSO_ROLE:
                lasso = layer
                break
        else:
            size = float(np.median(source.size)) if source is not None else 5.0
            lasso = Shapes(
                name="lasso (draw around cells)",
                ndim=2,
                face_color="transparent",
                edge_color="white",
                edge_width=max(size * 0.2, 1e-3),
                metadata={"role": LASSO_ROLE},
            )
            viewer.layers.append(lasso)
            lasso.events.data.connect(self._on_lasso_drawn)
        viewer.layers.selection.active = lasso
        lasso.mode = "add_polygon_lasso"
        return lasso

    def _on_lasso_drawn(self, event) -> None:
        if getattr(event, "action", "added") not in ("added", None):
            return
        lasso = event.source
        if len(lasso.data):
            drawn = np.asarray(lasso.data[-1])[:, -2:]
            scale, translate = np.asarray(lasso.scale)[-2:], np.asarray(lasso.translate)[-2:]
            self.select_in_polygon(drawn * scale + translate)

    def select_in_polygon(self, vertices: np.ndarray) -> np.ndarray:
        """Select the cells of the chosen layer inside a polygon (world row, col vertices).

        World coordinates: the cells layer's scale and translate are applied to its
        points before they are compared with the polygon.
        """
        from matplotlib.path import Path as PolygonPath

        source = self._host.source
        if source is None:
            return np.zeros(0, dtype=np.int64)
        inside = PolygonPath(np.asarray(vertices, dtype=float)).contains_points(
            world_coordinates(source)
        )
        chosen = layer_positions(source)[inside]
        select_cells(self._host.viewer, source.metadata["adata"], chosen)
        return np.sort(chosen)
