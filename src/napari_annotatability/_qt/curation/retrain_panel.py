"""Retrain on the curated labels (cancellable) and tabulate how the flags changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from magicgui.widgets import Container, PushButton
from napari.qt.threading import GeneratorWorker
from qtpy.QtWidgets import QTableWidget, QTableWidgetItem

from napari_annotatability import api
from napari_annotatability._napari.viewer_sync import write_results
from napari_annotatability._qt.curation.host import CurationHost
from napari_annotatability._qt.setting_widgets import setting_box
from napari_annotatability._qt.tasks import failure_message, start_task
from napari_annotatability._qt.training_worker import training_updates
from napari_annotatability.core import keys
from napari_annotatability.core.cell_filters import flag_changes


class RetrainPanel(Container):
    """Epochs, *Retrain on curated labels*, *Cancel retraining* and the flag changes."""

    def __init__(self, host: CurationHost) -> None:
        super().__init__(labels=True)
        self._host = host
        self.worker: GeneratorWorker | None = None
        self.epochs = setting_box("epochs", label="retrain epochs")
        self.button = PushButton(text="Retrain on curated labels")
        self.cancel_button = PushButton(text="Cancel retraining", enabled=False)
        self.extend(
            [
                self.epochs,
                Container(
                    widgets=[self.button, self.cancel_button], layout="horizontal", labels=False
                ),
            ]
        )
        self.changes = QTableWidget(0, 0)
        self.changes.setMinimumHeight(120)
        self.changes.setVisible(False)
        self.native.layout().addWidget(self.changes)
        self.button.clicked.connect(self.retrain)
        self.cancel_button.clicked.connect(self.cancel)

    def retrain(self) -> GeneratorWorker | None:
        """Train on the curated labels as the audit being curated was trained."""
        host = self._host
        source, curation = host.source, host.curation
        if source is None or curation is None:
            host.report("Nothing to retrain: choose a curated cells layer.", error=True)
            return None
        if keys.flag_key(curation.label_key) not in curation.adata.obs:
            host.report("Train on the original annotation first (Audit annotation).", error=True)
            return None
        settings = {
            **api.stored_training_settings(curation.adata, curation.label_key),
            "epochs": self.epochs.value,
        }
        host.report(f"Retraining on {curation.curated}...")
        self.button.enabled = False
        self.cancel_button.enabled = host.threaded
        self.worker = start_task(
            training_updates,
            curation.adata,
            curation.curated,
            threaded=host.threaded,
            progress={"desc": f"Retraining on {curation.curated}"},
            returned=self._on_retrained,
            errored=lambda error: host.report(failure_message(error, "Retraining"), error=True),
            finished=self._on_finished,
            aborted=self._on_cancelled,
            **settings,
        )
        return self.worker

    def cancel(self) -> None:
        """Stop the retraining at the next epoch; nothing of it is written."""
        if self.worker is not None:
            self._host.report("Cancelling the retraining...")
            self.worker.quit()

    def quit(self) -> None:
        """Stop a running retraining (the widget is closing)."""
        if self.worker is not None:
            self.worker.quit()

    def _on_cancelled(self) -> None:
        curation = self._host.curation
        what = "" if curation is None else f" of {curation.curated!r}"
        self._host.report(f"Retraining cancelled: no audit{what} was written.")

    def _on_finished(self) -> None:
        self.worker = None
        self.button.enabled = True
        self.cancel_button.enabled = False

    def _on_retrained(self, result: api.AnnotatabilityResult) -> None:
        host = self._host
        source, curation = host.source, host.curation
        if source is None or curation is None:
            return
        write_results(
            host.viewer, curation.adata, result, curating=curation.label_key, store_record=True
        )
        table = flag_changes(
            curation.adata, keys.flag_key(curation.label_key), keys.flag_key(curation.curated)
        )
        curation.adata.uns[f"{curation.curated}_flag_changes"] = table
        self.show_changes(table)
        moved = int(table.to_numpy().sum() - np.trace(table.to_numpy()))
        host.report(f"Retrained on {curation.curated}: {moved} cells changed flag (table below).")

    def show_changes(self, table: pd.DataFrame) -> None:
        """Show the from -> to table of flags."""
        self.changes.setVisible(True)
        self.changes.setRowCount(len(table.index))
        self.changes.setColumnCount(len(table.columns))
        self.changes.setHorizontalHeaderLabels([f"now {c}" for c in table.columns])
        self.changes.setVerticalHeaderLabels([f"was {r}" for r in table.index])
        for i in range(len(table.index)):
            for j in range(len(table.columns)):
                self.changes.setItem(i, j, QTableWidgetItem(str(int(table.iat[i, j]))))
        self.changes.resizeColumnsToContents()
