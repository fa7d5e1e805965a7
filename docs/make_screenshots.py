"""Regenerate the screenshots of docs/napari.md (run by hand under a display).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py

Uses the bundled sample (as it is, and with 5% of its labels moved to another layer, the
slips the flags should find) and, when present, the squidpy Visium fixture of
``../shared/data`` for the image overlay.
"""

from __future__ import annotations

import logging
from pathlib import Path

import napari
import numpy as np

from napari_annotatability._napari.selection import select_cells
from napari_annotatability._qt.data_map import DataMapWidget
from napari_annotatability._qt.genes_widget import GenesWidget
from napari_annotatability._qt.graph_widget import GraphWidget
from napari_annotatability._qt.launch import write_png
from napari_annotatability._qt.training_widget import TrainingWidget
from napari_annotatability.api import audit_summary
from napari_annotatability.datasets import add_label_errors

IMAGES = Path(__file__).parent / "images"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
logger = logging.getLogger("screenshots")


def save(viewer: napari.Viewer, name: str) -> None:
    """Save the whole window as ``images/<name>``."""
    napari.qt.get_qapp().processEvents()
    image = viewer.screenshot(canvas_only=False, flash=False)
    write_png(np.asarray(image), IMAGES / name)
    logger.warning("wrote %s", IMAGES / name)


def add_slips(viewer: napari.Viewer) -> None:
    """Move 5% of the sample's labels to another layer (an annotator's slips)."""
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    adata.obs["slipped"] = add_label_errors(adata, "layer", 0.05)


def audit(viewer: napari.Viewer) -> None:
    """Dock the audit and data map widgets and train on the sample."""
    trainer = TrainingWidget(viewer, threaded=False)
    viewer.window.add_dock_widget(trainer, name="Audit annotation")
    data_map = DataMapWidget(viewer)
    viewer.window.add_dock_widget(data_map, name="Data map")
    trainer.train()
    napari.qt.get_qapp().processEvents()
    viewer.reset_view()
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    flags = adata.obs["layer_flag"].value_counts().to_dict()
    logger.warning("%s; flags %s", audit_summary(adata, "layer"), flags)
    if "slipped" in adata.obs:
        hard = adata.obs["layer_flag"] == "Hard-to-learn"
        slipped = adata.obs["slipped"].to_numpy(dtype=bool)
        logger.warning("%d slips, %d of them Hard-to-learn", slipped.sum(), (hard & slipped).sum())


def sample_viewer(*, slips: bool, height: int = 950) -> napari.Viewer:
    """A window on the bundled sample, as it is or with 5% slips."""
    viewer = napari.Viewer()
    viewer.window.resize(1500, height)
    viewer.open_sample("napari-annotatability", "visium_dlpfc")
    if slips:
        add_slips(viewer)
    return viewer


def audited_sample_with_slips() -> napari.Viewer:
    """The sample with 5% slips, audited by the training widget (no widget docked)."""
    viewer = sample_viewer(slips=True, height=1000)
    TrainingWidget(viewer, threaded=False).train()
    return viewer


def audit_and_genes() -> None:
    """Train on the bundled sample as it is: the flags, then the genes screenshots."""
    viewer = sample_viewer(slips=False)
    audit(viewer)
    save(viewer, "plugin_flags.png")

    viewer.window.remove_dock_widget("all")
    genes = GenesWidget(viewer, threaded=False)
    viewer.window.add_dock_widget(genes, name="Genes")
    genes.score()
    genes.view.selectRow(0)
    genes.show_gene(genes.view.item(0, 0).text())
    save(viewer, "plugin_genes.png")
    viewer.close()


def slips_and_graph() -> None:
    """The sample with 5% slips: the flags find them; the graph around them."""
    viewer = sample_viewer(slips=True)
    audit(viewer)
    save(viewer, "flags_slips.png")

    viewer.window.remove_dock_widget("all")
    graph = GraphWidget(viewer, threaded=False)
    viewer.window.add_dock_widget(graph, name="Trainability graph")
    graph.build()
    flags = next(layer for layer in viewer.layers if layer.metadata.get("role") == "flags")
    hard = np.flatnonzero(flags.features["layer_flag"].astype(str) == "Hard-to-learn")
    select_cells(viewer, flags.metadata["adata"], hard[:: max(len(hard) // 12, 1)])
    graph._edges.value = True
    for layer in viewer.layers:
        layer.visible = layer.metadata.get("role") in ("graph", "flags")
    save(viewer, "plugin_graph.png")
    viewer.close()


def curation() -> None:
    """Curation and review widgets on the sample with slips, after a few decisions."""
    from napari_annotatability._qt.curation_widget import CurationWidget
    from napari_annotatability._qt.review_widget import ReviewWidget

    viewer = audited_sample_with_slips()
    curate = CurationWidget(viewer, threaded=False)
    viewer.window.add_dock_widget(curate, name="Curate annotation")
    curate.selection.flag.value = "Hard-to-learn"
    curate.selection.conf_max.value = 0.3
    curate.selection.select_matching()
    curate.edits.accept_selected()
    curate.selection.select_matching()  # show the selection count and its class breakdown
    for layer in viewer.layers:
        layer.visible = layer.metadata.get("role") == "curated"
    napari.qt.get_qapp().processEvents()
    viewer.reset_view()
    save(viewer, "curation.png")

    viewer.window.remove_dock_widget("all")
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review, name="Review flagged cells")
    review.start()
    review.keep()
    review.accept()
    save(viewer, "review.png")
    viewer.close()


def class_report_widget() -> None:
    """The class report widget on the sample with slips, its largest confusion selected."""
    from napari_annotatability._qt.class_report_widget import ClassReportWidget

    viewer = audited_sample_with_slips()
    widget = ClassReportWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Class report", area="right")
    matrix = widget.matrix
    counts = np.array(
        [
            [float(matrix.item(r, c).text() or 0) for c in range(matrix.columnCount())]
            for r in range(matrix.rowCount())
        ]
    )
    row, column = np.unravel_index(np.argmax(counts), counts.shape)
    widget.select_entry(int(row), int(column))
    for layer in viewer.layers:
        layer.visible = (
            layer.metadata.get("role") in (None, "flags") and layer.name != "DLPFC layer"
        )
    flags = next(layer for layer in viewer.layers if layer.metadata.get("role") == "flags")
    viewer.layers.selection.active = flags
    flags.mode = "select"  # napari outlines selected points in select mode
    napari.qt.get_qapp().processEvents()
    viewer.reset_view()
    save(viewer, "class_report.png")
    viewer.close()


def evidence_widget() -> None:
    """The cell evidence widget on the first cell of the review queue (sample with slips)."""
    from napari_annotatability._qt.evidence_widget import EvidenceWidget
    from napari_annotatability._qt.review_widget import ReviewWidget

    viewer = audited_sample_with_slips()
    evidence = EvidenceWidget(viewer)
    viewer.window.add_dock_widget(evidence, name="Cell evidence", area="right")
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review, name="Review flagged cells", area="left")
    review.start()  # selects the first cell: the evidence widget follows it
    for layer in viewer.layers:
        layer.visible = layer.metadata.get("role") in ("flags", "review marker")
    napari.qt.get_qapp().processEvents()
    shown = evidence.evidence
    logger.warning(
        "evidence of %s (%s, %s -> %s) in %.0f ms",
        shown.cell,
        shown.label,
        shown.flag,
        shown.suggestion,
        1000 * evidence.seconds,
    )
    save(viewer, "evidence.png")
    viewer.close()


def light_theme() -> None:
    """The plugin in napari's light theme: flags, the data map and the curation widget."""
    from napari_annotatability._qt.curation_widget import CurationWidget

    viewer = sample_viewer(slips=True, height=1000)
    viewer.theme = "light"
    audit(viewer)
    viewer.window.add_dock_widget(CurationWidget(viewer, threaded=False), name="Curate")
    napari.qt.get_qapp().processEvents()
    viewer.reset_view()
    save(viewer, "plugin_light.png")
    viewer.close()


def visium_image() -> None:
    """The squidpy Visium fixture opened by the reader: the image under the spots."""
    path = SHARED / "visium_mousebrain_squidpy_fixture" / "visium_mousebrain_squidpy_fixture.h5ad"
    if not path.is_file():
        logger.warning("skipping the image screenshot: %s not found", path)
        return
    viewer = napari.Viewer()
    viewer.window.resize(1300, 850)
    viewer.open(str(path), plugin="napari-annotatability")
    viewer.reset_view()
    save(viewer, "reader_visium_image.png")
    viewer.close()


def _slipped_store(path: Path, **kwargs) -> Path:
    """The bundled sample with 5% slips, written as a SpatialData store."""
    from napari_annotatability import datasets

    adata = datasets.visium_dlpfc()
    adata.obs["slipped"] = add_label_errors(adata, "layer", 0.05)
    if kwargs.get("section_key"):
        adata.obs["sample"] = np.where(adata.obsm["spatial"][:, 0] < 60, "donor A", "donor B")
    return datasets.write_spatialdata_store(adata, path, overwrite=True, **kwargs)


def spatialdata_stores() -> None:
    """SpatialData: a two-section store by this reader; one opened through napari-spatialdata."""
    import tempfile

    from napari.utils.events import EventedList
    from napari_spatialdata._sdata_widgets import SdataWidget
    from spatialdata import read_zarr

    from napari_annotatability._qt.curation_widget import CurationWidget

    with tempfile.TemporaryDirectory() as folder:
        store = _slipped_store(Path(folder) / "two.zarr", section_key="sample")
        viewer = napari.Viewer()
        viewer.window.resize(1500, 950)
        viewer.open(str(store), plugin="napari-annotatability")
        trainer = TrainingWidget(viewer, threaded=False)
        viewer.window.add_dock_widget(trainer, name="Audit annotation")
        trainer.train()
        curate = CurationWidget(viewer, threaded=False)
        viewer.window.add_dock_widget(curate, name="Curate annotation")
        napari.qt.get_qapp().processEvents()
        viewer.reset_view()
        save(viewer, "spatialdata_sections.png")
        viewer.close()

        store = _slipped_store(Path(folder) / "one.zarr")
        viewer = napari.Viewer()
        viewer.window.resize(1500, 950)
        sdata = read_zarr(store)
        theirs = SdataWidget(viewer, EventedList([sdata]))
        viewer.window.add_dock_widget(theirs, name="SpatialData", area="left")
        model = theirs.viewer_model
        viewer.add_layer(model.get_sdata_image(sdata, "cell_boundaries_image", "global", False))
        shapes = model.get_sdata_shapes(sdata, "cell_boundaries", "global", False)
        viewer.add_layer(shapes)
        trainer = TrainingWidget(viewer, threaded=False)
        viewer.window.add_dock_widget(trainer, name="Audit annotation")
        theirs.coordinate_system_widget.setCurrentRow(0)  # lists the store's elements
        trainer._cells.value = shapes  # their layer, chosen in our widget
        trainer.train()
        flags = viewer.layers["layer flags"]
        flags.size = 0.9  # smaller than a cell: its polygon (napari-spatialdata's) shows around
        viewer.layers["cell_boundaries cells"].visible = False
        shapes.edge_color = "white"
        shapes.edge_width = 0.08
        viewer.layers.selection.active = shapes
        napari.qt.get_qapp().processEvents()
        viewer.reset_view()
        viewer.camera.center = (0, 95, 45)
        viewer.camera.zoom = viewer.camera.zoom * 3
        save(viewer, "spatialdata_napari_spatialdata.png")
        viewer.close()


def audit_report() -> None:
    """The HTML report of the sample with 5% slips and a short curation, in Chromium.

    Needs Debian's ``chromium`` (headless); the page itself is docs/images/audit_report.html.
    """
    import shutil
    import subprocess
    import tempfile

    from napari_annotatability import annotate, curate, datasets, write_report

    adata = datasets.visium_dlpfc()
    adata.obs["slipped"] = add_label_errors(adata, "layer", 0.05)
    annotate(adata, "layer")
    curation = curate(adata, "layer")
    hard = np.flatnonzero(adata.obs["layer_flag"].astype(str) == "Hard-to-learn")
    curation.accept_suggestions(hard[:20])
    curation.keep(hard[20:30])
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("apt-get install chromium (headless Chromium takes the screenshot)")
    with tempfile.TemporaryDirectory() as folder:
        page = write_report(adata, Path(folder) / "audit.html", "layer")
        subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1100,2300",
                f"--screenshot={IMAGES / 'audit_report.png'}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    logger.warning("wrote %s", IMAGES / "audit_report.png")


SCREENSHOTS = {
    "audit": audit_and_genes,
    "graph": slips_and_graph,
    "curation": curation,
    "light": light_theme,
    "visium": visium_image,
    "spatialdata": spatialdata_stores,
    "report": audit_report,
    "class_report": class_report_widget,
    "evidence": evidence_widget,
}

if __name__ == "__main__":
    import sys

    IMAGES.mkdir(exist_ok=True)
    for name in sys.argv[1:] or SCREENSHOTS:  # e.g. `python docs/make_screenshots.py light`
        SCREENSHOTS[name]()
