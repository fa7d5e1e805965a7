"""From a SpatialData store to flags, curation and a saved store, by the widgets.

Both ways of opening a store: this plugin's reader, and napari-spatialdata's layers.
"""

from __future__ import annotations

import numpy as np
import pytest

spatialdata = pytest.importorskip("spatialdata")

from napari_annotatability._qt.curation_widget import CurationWidget  # noqa: E402
from napari_annotatability._qt.review_widget import ReviewWidget  # noqa: E402
from napari_annotatability._qt.training_widget import TrainingWidget  # noqa: E402


def _train(viewer, cells=None):
    trainer = TrainingWidget(viewer, threaded=False)
    if cells is not None:
        trainer._cells.value = cells
    trainer._epochs.value, trainer._suggest_epochs.value = 5, 3
    trainer.train()
    return trainer


def test_store_to_flags_curation_and_back_into_the_store(make_napari_viewer, dlpfc_store):
    viewer = make_napari_viewer()
    viewer.open(str(dlpfc_store), plugin="napari-annotatability")
    _train(viewer)
    cells = viewer.layers["layer"]
    adata = cells.metadata["adata"]
    assert "flags" in [layer.metadata.get("role") for layer in viewer.layers]
    curation_widget = CurationWidget(viewer, threaded=False)
    assert not curation_widget.export.write_back_button.native.isHidden()  # offered
    cells.selected_data = {0, 1, 2}
    viewer.layers.selection.active = cells
    curation_widget.edits.target.value = "WM"
    curation_widget.edits.relabel_selected()
    written = curation_widget.export.write_back()
    assert written == dlpfc_store / "tables" / "table"
    table = spatialdata.read_zarr(dlpfc_store).tables["table"]
    assert list(table.obs["layer_curated"][:3]) == ["WM"] * 3
    np.testing.assert_allclose(table.obs["layer_conf"], adata.obs["layer_conf"])
    assert len(table.uns["annotatability_edits"]) == 3  # one row per edited cell
    # the widget reports it; a later edit can be written again (the store is ours)
    cells.selected_data = {3}
    curation_widget.edits.relabel_selected()
    curation_widget.export.write_back()
    assert spatialdata.read_zarr(dlpfc_store).tables["table"].obs["layer_curated"].iloc[3] == "WM"


def test_sections_are_audited_together_and_reviewed_per_section(
    make_napari_viewer, two_section_store
):
    viewer = make_napari_viewer()
    viewer.open(str(two_section_store), plugin="napari-annotatability")
    a_cells = viewer.layers["A_cells layer"]
    _train(viewer, a_cells)
    adata = a_cells.metadata["adata"]
    assert adata.obs["layer_flag"].notna().all()  # both sections, one audit
    review = ReviewWidget(viewer)
    review._which.value = "Hard-to-learn and Ambiguous"
    review._cells.value = a_cells
    queue = review.start()
    in_a = (adata.obs["section"] == "A_cells").to_numpy()
    assert queue is not None and in_a[queue.positions].all()  # this section only
    review.stop()
    review._sections.value = True  # across all sections
    queue = review.start()
    assert in_a[queue.positions].any() and (~in_a[queue.positions]).any()
    review.stop()
    # the curation filters too: this section, or all of them
    curation_widget = CurationWidget(viewer, threaded=False)
    curation_widget._cells.value = a_cells
    chosen = curation_widget.selection.select_matching()
    np.testing.assert_array_equal(chosen, np.flatnonzero(in_a))
    curation_widget.selection.all_sections.value = True
    np.testing.assert_array_equal(curation_widget.selection.select_matching(), np.arange(3636))


def test_napari_spatialdata_layers_in_our_widgets(make_napari_viewer, dlpfc_store):
    from napari.utils.events import EventedList
    from napari_spatialdata._sdata_widgets import SdataWidget

    viewer = make_napari_viewer()
    sdata = spatialdata.read_zarr(dlpfc_store)
    theirs = SdataWidget(viewer, EventedList([sdata]))
    shapes = theirs.viewer_model.get_sdata_shapes(sdata, "cell_boundaries", "global", False)
    viewer.add_layer(shapes)
    trainer = TrainingWidget(viewer, threaded=False)
    assert shapes in trainer._cells.choices  # their layer is offered
    trainer._cells.value = shapes  # choosing it makes (and chooses) the cells of its rows
    cells = trainer._cells.value
    assert cells is viewer.layers["cell_boundaries cells"]
    trainer._epochs.value, trainer._suggest_epochs.value = 5, 3
    trainer.train()
    assert cells.metadata["spatialdata"].sdata is sdata
    # each cell sits inside its (simplified) polygon, in the layer's coordinate system
    low = np.array([np.min(polygon, axis=0) for polygon in shapes.data])
    high = np.array([np.max(polygon, axis=0) for polygon in shapes.data])
    order = np.argsort(shapes.metadata["indices"])  # the layer's rows by instance id
    data = np.asarray(cells.data)[np.argsort(cells.metadata["adata"].obs["instance_id"])]
    margin = 0.05  # float32 vertices; the cells are 2 apart
    assert ((data >= low[order] - margin) & (data <= high[order] + margin)).all()
    # results and curated labels are mirrored into napari-spatialdata's table and layer
    table = sdata.tables["table"]
    assert "layer_flag" in table.obs and "layer_flag" in shapes.metadata["adata"].obs
    curation_widget = CurationWidget(viewer, threaded=False)
    cells.selected_data = {0}
    viewer.layers.selection.active = cells
    curation_widget.edits.target.value = "WM"
    curation_widget.edits.relabel_selected()
    assert table.obs["layer_curated"].iloc[0] == "WM"
    joined = shapes.metadata["adata"].obs
    first = joined.index[joined["instance_id"] == table.obs["instance_id"].iloc[0]][0]
    assert joined.loc[first, "layer_curated"] == "WM"
    # and the store on disk gets them through the same button
    curation_widget.export.write_back()
    assert spatialdata.read_zarr(dlpfc_store).tables["table"].obs["layer_curated"].iloc[0] == "WM"


def test_the_review_keys_leave_napari_spatialdata_its_own():
    from napari_annotatability._qt.review_widget import KEYS

    assert not {"Shift+E", "Shift+L", "Ctrl+L"} & set(KEYS.values())
