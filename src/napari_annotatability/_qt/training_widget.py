"""Dock widget: train the Annotatability network in the background, show the results."""

from __future__ import annotations

import logging
import time

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
)
from napari.layers import Points
from napari.qt.threading import GeneratorWorker
from napari.utils.notifications import show_error, show_info

from napari_annotatability._napari.viewer_sync import (
    remove_running_confidence,
    show_running_confidence,
    write_results,
)
from napari_annotatability._qt.cells_widget import CellsWidget
from napari_annotatability._qt.setting_widgets import setting_box
from napari_annotatability._qt.tasks import failure_message, start_task
from napari_annotatability._qt.training_worker import TrainingUpdate, training_updates
from napari_annotatability.api import AnnotatabilityResult, audit_summary, total_steps
from napari_annotatability.core.device_data import available_devices
from napari_annotatability.core.scores import FLAG_CATEGORIES

logger = logging.getLogger(__name__)

#: "flags from" choices -> ``flags`` of :func:`~napari_annotatability.api.annotate`.
EVIDENCE = "label evidence"
FLAG_SOURCES = {EVIDENCE: "evidence", "training dynamics": "dynamics"}
#: Seconds between two refreshes of the running-confidence layer.
RUNNING_REFRESH_SECONDS = 0.5
_X = "X"
_LAYER = "layers: "
_OBSM = "obsm: "


def label_columns(obs: pd.DataFrame) -> list[str]:
    """obs columns offered as annotations: categorical (and text) ones first."""
    categorical = [
        c
        for c in obs.columns
        if isinstance(obs[c].dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(obs[c])
        or pd.api.types.is_string_dtype(obs[c])
    ]
    return categorical + [c for c in obs.columns if c not in categorical]


def input_choices(adata) -> list[str]:
    """The matrices a network can train on: X, each layer, each 2-D obsm but spatial."""
    layers = [f"{_LAYER}{k}" for k in adata.layers]
    obsm = [f"{_OBSM}{k}" for k in adata.obsm if k != "spatial" and np.ndim(adata.obsm[k]) == 2]
    return [_X, *layers, *obsm]


def parse_input(choice: str) -> dict[str, str | None]:
    """``layer`` / ``use_rep`` keyword arguments from an input choice."""
    if choice.startswith(_LAYER):
        return {"layer": choice[len(_LAYER) :], "use_rep": None}
    if choice.startswith(_OBSM):
        return {"layer": None, "use_rep": choice[len(_OBSM) :]}
    return {"layer": None, "use_rep": None}


class TrainingWidget(CellsWidget):
    """Choose an annotation and the training settings, train, and show the flags.

    Parameters
    ----------
    viewer
        The napari viewer whose cells layers (from the reader or the sample data)
        can be audited.
    threaded
        Train in a worker thread (the default). ``False`` runs in the calling thread,
        for scripts and tests.
    """

    def __init__(self, viewer: napari.viewer.Viewer, *, threaded: bool = True) -> None:
        super().__init__(viewer)
        self.threaded = threaded
        self.worker: GeneratorWorker | None = None
        self._last_refresh = 0.0
        self._source: Points | None = None

        self._label = ComboBox(label="annotation", choices=self._label_choices)
        self._input = ComboBox(label="input", choices=self._input_choices)
        self._normalize = CheckBox(label="normalise + log1p", value=False)
        self._n_top_genes = SpinBox(label="top genes (0: all)", value=0, min=0, max=100_000)
        self._epochs = setting_box("epochs")
        self._auto_lr = CheckBox(label="learning rate from the data", value=True)
        self._lr = FloatSpinBox(
            label="learning rate", value=0.001, min=1e-6, max=1.0, step=1e-4, enabled=False
        )
        self._momentum = setting_box("momentum")
        self._batch_size = setting_box("batch_size")
        self._depth = ComboBox(label="depth", choices=[3, 4, 5], value=3)
        self._min_width = setting_box("min_width")
        self._min_steps = setting_box("min_steps")
        self._weighted = CheckBox(label="class-balanced sampler", value=True)
        self._seed = setting_box("seed")
        self._device = ComboBox(label="device", choices=available_devices(), value="auto")
        self._flags = ComboBox(label="flags from", choices=list(FLAG_SOURCES), value=EVIDENCE)
        self._neighbours = setting_box("spatial_neighbours")
        self._calibrate = CheckBox(label="calibrate flags", value=True)
        self._suggest = CheckBox(label="suggest corrections", value=True)
        self._suggest_epochs = setting_box("suggest_epochs")
        self._keep_curves = CheckBox(label="keep training curves", value=True)
        self._train = PushButton(text="Train")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._status = Label(value="")
        self.extend(
            [
                self._cells,
                self._label,
                self._input,
                self._normalize,
                self._n_top_genes,
                self._epochs,
                self._auto_lr,
                self._lr,
                self._momentum,
                self._batch_size,
                self._depth,
                self._min_width,
                self._min_steps,
                self._weighted,
                self._seed,
                self._device,
                self._flags,
                self._neighbours,
                self._calibrate,
                self._suggest,
                self._suggest_epochs,
                self._keep_curves,
                self._train,
                self._cancel,
                self._status,
            ]
        )
        self._lr.native.setDecimals(6)
        self._auto_lr.tooltip = (
            "1 / mean squared norm of the cells' input (at least 0.001): the same step "
            "size on every dataset. Untick to set it by hand (the reference uses 0.001)."
        )
        self._min_width.tooltip = (
            "Hidden layers are at least this wide (0: the reference's widths g/2, g/4, ...,"
            " which under-fit small panels with many classes)."
        )
        self._min_steps.tooltip = (
            "Optimiser steps per epoch at least: small sections (under steps x batch size "
            "cells) are trained that much more (0: one pass over the cells, the reference's)."
        )
        self._auto_lr.changed.connect(lambda auto: setattr(self._lr, "enabled", not auto))
        self._status.native.setWordWrap(True)
        self._suggest.tooltip = (
            "Suggest a label for each Hard-to-learn cell: the most likely other class by the "
            "label evidence (training dynamics: a network trained on the other cells)."
        )
        self._calibrate.tooltip = (
            "Noise injection: flip 5% of the labels, score again and see how errors score: "
            "it sets how many cells are Hard-to-learn. Without it the label evidence flags a "
            "cell when its mislabel score exceeds 0.5 (training dynamics: no Hard-to-learn)."
        )
        self._flags.tooltip = (
            "Label evidence: models that never saw a cell's label, its tissue neighbours and "
            "a label-noise model score how likely the label is wrong (docs/quality.md). "
            "Training dynamics: the method's own rule on conf and var."
        )
        self._neighbours.tooltip = (
            "Nearest cells on the tissue whose labels the label evidence weighs (0: "
            "expression only); how much they count is chosen from the data."
        )
        self._keep_curves.tooltip = (
            "Keep each cell's probability at every epoch in obsm (the Cell evidence widget "
            "draws it): 4 bytes per cell and epoch, e.g. 20 MB for 100,000 cells x 50 epochs."
        )
        self._flags.changed.connect(self._on_flags_changed)
        self._on_flags_changed(self._flags.value)
        self._cells.changed.connect(self._on_cells_changed)
        self._train.clicked.connect(self.train)
        self._cancel.clicked.connect(self.cancel)
        self.refresh()

    def _on_flags_changed(self, value: str) -> None:
        # the tissue counts in the evidence only; the suggestion network is the dynamics'
        self._neighbours.enabled = value == EVIDENCE
        self._suggest_epochs.enabled = value != EVIDENCE

    # --- choices -------------------------------------------------------------------
    def _adata(self):
        layer = self._cells.value
        return None if layer is None else layer.metadata["adata"]

    def _label_choices(self, _widget=None) -> list[str]:
        adata = self._adata()
        return [] if adata is None else label_columns(adata.obs)

    def _input_choices(self, _widget=None) -> list[str]:
        adata = self._adata()
        return [_X] if adata is None else input_choices(adata)

    def layers_changed(self) -> None:
        """Follow the chosen cells layer."""
        self._on_cells_changed(self._cells.value)

    def _on_cells_changed(self, layer: Points | None) -> None:
        self._label.reset_choices()
        self._input.reset_choices()
        if layer is not None and layer.metadata.get("label_key") in self._label.choices:
            self._label.value = layer.metadata["label_key"]
        self._input.value = _X

    # --- running -------------------------------------------------------------------
    def settings(self) -> dict:
        """The keyword arguments of :func:`~napari_annotatability.api.annotate_steps`."""
        return {
            **parse_input(self._input.value),
            "normalize": self._normalize.value,
            "n_top_genes": self._n_top_genes.value or None,
            "epochs": self._epochs.value,
            "lr": "auto" if self._auto_lr.value else self._lr.value,
            "momentum": self._momentum.value,
            "batch_size": self._batch_size.value,
            "depth": self._depth.value,
            "min_width": self._min_width.value or None,
            "min_steps": self._min_steps.value or None,
            "weighted_sampler": self._weighted.value,
            "seed": self._seed.value,
            "device": self._device.value,
            "flags": FLAG_SOURCES[self._flags.value],
            "spatial_neighbours": self._neighbours.value,
            "calibrate": self._calibrate.value,
            "suggest": self._suggest.value,
            "suggest_epochs": self._suggest_epochs.value,
        }

    def train(self) -> GeneratorWorker | None:
        """Start training on the chosen cells layer; returns the worker when threaded."""
        source = self._cells.value
        if source is None:
            show_error("No cells to audit: open an .h5ad file or a sample (File > Open Sample).")
            return None
        if self.worker is not None:
            show_info("A network is already training; cancel it first.")
            return self.worker
        label_key = self._label.value
        if label_key is None:
            show_error("Choose the annotation column to audit.")
            return None
        settings = self.settings()
        adata = source.metadata["adata"]
        self._source = source
        # The layer's label key follows the audited column, so result layers match it.
        source.metadata["label_key"] = label_key
        n_steps = total_steps(adata.n_obs, **settings)
        self._set_running(True)
        self._status.value = f"Preparing {label_key}..."
        self.worker = start_task(
            training_updates,
            adata,
            label_key,
            threaded=self.threaded,
            progress={"total": n_steps, "desc": f"Auditing {label_key}"},
            yielded=self._on_update,
            returned=self._on_result,
            errored=self._on_error,
            aborted=self._on_aborted,
            finished=self._on_finished,
            **settings,
        )
        return self.worker

    def cancel(self) -> None:
        """Stop the running training at the end of its current epoch."""
        if self.worker is not None:
            self._status.value = "Cancelling at the end of this epoch..."
            self.worker.quit()

    def _set_running(self, running: bool) -> None:
        self._train.enabled = not running
        self._cancel.enabled = running and self.threaded

    # --- main-thread callbacks -----------------------------------------------------
    def _on_update(self, update: TrainingUpdate) -> None:
        if update.phase.startswith("evidence"):
            self._status.value = (
                f"{update.phase}: fit {update.epoch}/{update.n_epochs} "
                f"(step {update.step}/{update.total_steps})"
            )
        else:
            self._status.value = (
                f"{update.phase}: epoch {update.epoch}/{update.n_epochs} "
                f"(step {update.step}/{update.total_steps}), loss {update.loss:.3f}"
            )
        conf = update.running_confidence
        source = self._source
        if conf is None or source is None:
            return
        if len(conf) != source.metadata["adata"].n_obs:
            return
        now = time.perf_counter()
        last = update.epoch == update.n_epochs
        if last or now - self._last_refresh >= RUNNING_REFRESH_SECONDS:
            show_running_confidence(self._viewer, source, conf)
            self._last_refresh = time.perf_counter()

    def _on_result(self, result: AnnotatabilityResult) -> None:
        source = self._source
        if source is None:
            return
        adata = source.metadata["adata"]
        remove_running_confidence(self._viewer, source)
        write_results(self._viewer, adata, result, store_record=self._keep_curves.value)
        counts = pd.Series(np.asarray(result.flags, dtype=object)).value_counts()
        summary = ", ".join(f"{counts.get(flag, 0)} {flag}" for flag in FLAG_CATEGORIES)
        seconds = result.params.get("total_seconds", float("nan"))
        self._status.value = (
            f"Done in {seconds:.1f} s: {audit_summary(adata, result.label_key)}. {summary}."
        )

    def _on_error(self, error: Exception) -> None:
        if self._source is not None:
            remove_running_confidence(self._viewer, self._source)
        message = failure_message(error, "Training")
        self._status.value = message
        show_error(message)

    def _on_aborted(self) -> None:
        if self._source is not None:
            remove_running_confidence(self._viewer, self._source)
        self._status.value = "Cancelled; the previous results are unchanged."

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)

    def release(self) -> None:
        """Quit a running worker and stop listening to the viewer (widget closing)."""
        if self.worker is not None:
            self.worker.quit()
        super().release()
