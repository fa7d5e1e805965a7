"""Save the curated AnnData, write it into its SpatialData table, export a table or a report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import Container, PushButton
from qtpy.QtWidgets import QFileDialog, QMessageBox

from napari_annotatability import api
from napari_annotatability._qt.curation.host import CurationHost
from napari_annotatability.core import anndata_io as io
from napari_annotatability.core.errors import AnnotatabilityInputError

if TYPE_CHECKING:
    from napari_annotatability.core.spatialdata_read import SpatialDataSource


class ExportPanel(Container):
    """Save, write back, export a table or write the audit report.

    Buttons *Save curated AnnData...*, *Write into SpatialData table*, *Export table...*
    and *Audit report (HTML)...*.

    The SpatialData button shows only for cells read from a SpatialData store.
    """

    def __init__(self, host: CurationHost) -> None:
        super().__init__(labels=False)
        self._host = host
        save = PushButton(text="Save curated AnnData...")
        self.write_back_button = PushButton(text="Write into SpatialData table", visible=False)
        export = PushButton(text="Export table (CSV/TSV)...")
        report = PushButton(text="Audit report (HTML)...")
        report.tooltip = (
            "One self-contained HTML page: tissue and data map by flag, the class report, "
            "given x suggested labels, the curation so far, parameters and versions."
        )
        self.extend([save, self.write_back_button, export, report])
        save.clicked.connect(self._ask_save)
        self.write_back_button.clicked.connect(
            lambda: self._written(self.write_back, "Curation written into")
        )
        export.clicked.connect(self._ask_export)
        report.clicked.connect(self._ask_report)

    def _link(self) -> SpatialDataSource | None:
        """The SpatialData table the chosen cells are rows of (``None``: not from a store)."""
        source = self._host.source
        return None if source is None else source.metadata.get("spatialdata")

    def follow(self) -> None:
        """Offer writing back only for cells that came from a SpatialData table."""
        link = self._link()
        self.write_back_button.visible = link is not None
        if link is not None:
            self.write_back_button.tooltip = (
                f"Replace {link.describe()} with the audited and curated cells (only that "
                "table is rewritten)."
            )

    def write_back(self) -> Path:
        """Write the audit, curated labels and edit log into the SpatialData table."""
        from napari_annotatability.core.spatialdata_write import write_table_back

        link = self._link()
        if link is None:
            raise AnnotatabilityInputError(
                "These cells were not read from a SpatialData store; save them as AnnData."
            )
        path = write_table_back(self._host.source.metadata["adata"], link)
        return path / "tables" / link.table_name

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

    def write_report(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the audit report (:func:`~napari_annotatability.api.write_report`).

        The audit of the annotation being curated (its curation included).
        """
        curation = self._host.curation
        if curation is None:
            raise AnnotatabilityInputError("No audited annotation to report on.")
        return api.write_report(curation.adata, path, curation.label_key, overwrite=overwrite)

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

    def _ask_report(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save audit report", "audit.html", "HTML (*.html)"
        )
        if path:  # the dialog has asked before replacing a file
            self._written(lambda: self.write_report(path, overwrite=True), "Report written to")

    def _written(self, write: Callable[[], Path], what: str) -> None:
        try:
            written = write()
        except AnnotatabilityInputError as error:
            self._host.report(str(error), error=True)
            return
        self._host.report(f"{what} {written}.", notify=True)
