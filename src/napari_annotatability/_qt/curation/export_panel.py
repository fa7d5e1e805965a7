"""Save the curated AnnData, or export the curation as a table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from magicgui.widgets import Container, PushButton
from qtpy.QtWidgets import QFileDialog, QMessageBox

from napari_annotatability import api
from napari_annotatability._qt.curation.host import CurationHost
from napari_annotatability.core import anndata_io as io
from napari_annotatability.core.errors import AnnotatabilityInputError


class ExportPanel(Container):
    """*Save curated AnnData...* and *Export table (CSV/TSV)...*."""

    def __init__(self, host: CurationHost) -> None:
        super().__init__(labels=False)
        self._host = host
        save = PushButton(text="Save curated AnnData...")
        export = PushButton(text="Export table (CSV/TSV)...")
        self.extend([save, export])
        save.clicked.connect(self._ask_save)
        export.clicked.connect(self._ask_export)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Save the curated AnnData (``.h5ad`` or ``.zarr``) atomically.

        Refuses to replace the file the data were opened from unless ``overwrite``.
        """
        source = self._host.source
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
        curation = self._host.curation
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
        source = self._host.source
        opened = source.metadata.get("source_path") if source is not None else None
        same = opened is not None and io.same_path(path, opened)
        overwrite = False
        if same or Path(path).exists():
            what = "the file these data were opened from" if same else "an existing file"
            answer = QMessageBox.question(
                self.native, "Replace file?", f"{path} is {what}. Replace it?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            overwrite = True
        self._written(lambda: self.save(path, overwrite=overwrite), "Curated AnnData saved to")

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.native, "Export curation table", "curation.csv", "CSV (*.csv);;TSV (*.tsv)"
        )
        if path:  # the dialog has asked before replacing a file
            self._written(lambda: self.export_table(path, overwrite=True), "Table written to")

    def _written(self, write: Callable[[], Path], what: str) -> None:
        try:
            written = write()
        except AnnotatabilityInputError as error:
            self._host.report(str(error), error=True)
            return
        self._host.report(f"{what} {written}.", notify=True)
