"""Curation in napari: selections, relabelling, undo/redo, retraining, the review queue."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd
import pytest
from matplotlib.path import Path as PolygonPath
from qtpy.QtCore import QCoreApplication, QEvent, Qt

from napari_annotatability import api, datasets
from napari_annotatability._napari.layers import cells_layer
from napari_annotatability._napari.selection import selected_positions
from napari_annotatability._napari.viewer_sync import cells_layers, show_results
from napari_annotatability._qt.curation_widget import CurationWidget
from napari_annotatability._qt.review_widget import KEYS, MARKER_ROLE, ReviewWidget
from napari_annotatability.core.cell_filters import filter_cells
from napari_annotatability.core.scores import HARD

pytestmark = pytest.mark.gui


@pytest.fixture
def dlpfc_scored(dlpfc_viewer, add_slips):
    """The bundled real sample, with 5% slips, after a short real audit, results shown."""
    source = dlpfc_viewer.layers["DLPFC layer"]
    add_slips(source.metadata["adata"], "layer")
    api.annotate(source.metadata["adata"], "layer", epochs=10, suggest_epochs=10)
    show_results(dlpfc_viewer, source)
    return dlpfc_viewer


def role(viewer, name):
    return next(layer for layer in viewer.layers if layer.metadata.get("role") == name)


def test_filters_select_exactly_the_matching_cells(dlpfc_scored):
    viewer = dlpfc_scored
    widget = CurationWidget(viewer, threaded=False)
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    widget.selection.flag.value = HARD
    widget.selection.conf_min.value, widget.selection.conf_max.value = 0.0, 0.2
    chosen = widget.selection.select_matching()
    obs = adata.obs
    expected = np.flatnonzero(((obs["layer_flag"] == HARD) & (obs["layer_conf"] <= 0.2)).to_numpy())
    np.testing.assert_array_equal(chosen, expected)
    np.testing.assert_array_equal(selected_positions(role(viewer, "flags")), expected)
    # the count and the class breakdown are shown
    counts = obs["layer"].iloc[expected].value_counts()
    assert widget.selection.summary.value.startswith(f"{expected.size} selected:")
    top = counts.index[0]
    assert f"{counts.iloc[0]} {top}" in widget.selection.summary.value

    widget.selection.flag.value = "any"
    widget.selection.conf_min.value, widget.selection.conf_max.value = 0.0, 1.0
    widget.selection.class_filter.value = "WM"
    widget.selection.suggested.value = "has a suggestion"
    chosen = widget.selection.select_matching()
    expected = np.flatnonzero(((obs["layer"] == "WM") & obs["layer_suggested"].notna()).to_numpy())
    np.testing.assert_array_equal(chosen, expected)
    np.testing.assert_array_equal(
        filter_cells(adata, "layer", suggested="Layer_3"),
        np.flatnonzero((obs["layer_suggested"] == "Layer_3").to_numpy()),
    )


def test_lasso_selects_the_cells_inside(dlpfc_scored):
    viewer = dlpfc_scored
    widget = CurationWidget(viewer, threaded=False)
    source = viewer.layers["DLPFC layer"]
    lasso = widget.selection.start_lasso()
    assert lasso.mode == "add_polygon_lasso"
    coords = np.asarray(source.data)
    centre = coords.mean(axis=0)
    spread = coords.std(axis=0)
    corners = np.array([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]])
    triangle = centre + corners * spread
    lasso.add_polygons([triangle])  # what drawing with the lasso tool adds
    expected = np.flatnonzero(PolygonPath(triangle).contains_points(coords))
    assert 10 < expected.size < len(coords)
    np.testing.assert_array_equal(widget.selection.selected(), expected)
    np.testing.assert_array_equal(selected_positions(role(viewer, "flags")), expected)
    # a second start reuses the lasso layer
    assert widget.selection.start_lasso() is lasso
    # the lasso is drawn in world coordinates: a scaled and moved section selects the
    # same cells with the same triangle over them
    source.scale, source.translate = (2.0, 2.0), (100.0, -50.0)
    lasso.add_polygons([triangle * 2.0 + np.array([100.0, -50.0])])
    np.testing.assert_array_equal(widget.selection.selected(), expected)


def test_relabel_accept_keep_undo_redo(dlpfc_scored, notifications):
    viewer = dlpfc_scored
    widget = CurationWidget(viewer, threaded=False)
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    original = adata.obs["layer"].copy()
    assert widget.edits.relabel_selected() is None  # nothing selected yet
    assert any("No cells selected" in m for m in notifications.messages)

    flags = role(viewer, "flags")
    flags.selected_data = {0, 1, 2}
    widget.edits.target.value = "WM"
    edit = widget.edits.relabel_selected()
    assert list(adata.obs["layer_curated"].iloc[:3]) == ["WM"] * 3
    assert adata.obs["layer_reviewed"].iloc[:3].all()
    curated = role(viewer, "curated")
    assert list(curated.features["layer_curated"].iloc[:3]) == ["WM"] * 3
    assert widget.edits.undo_button.enabled and not widget.edits.redo_button.enabled
    assert "manual: 3 cells" in widget.status.value
    assert edit.n_changed == int((original.iloc[:3] != "WM").sum())

    flags.selected_data = {5}
    widget.edits.new_class.value = "Layer_2 (new)"
    widget.edits.relabel_selected()
    assert adata.obs["layer_curated"].iloc[5] == "Layer_2 (new)"
    assert "Layer_2 (new)" in widget.edits.target.choices
    assert widget.edits.new_class.value == ""

    hard = np.flatnonzero(adata.obs["layer_flag"] == HARD)
    widget.edits.accept_all()
    np.testing.assert_array_equal(
        adata.obs["layer_curated"].astype(str).to_numpy()[hard],
        adata.obs["layer_suggested"].astype(str).to_numpy()[hard],
    )
    flags.selected_data = {10}
    widget.edits.keep_selected()
    assert adata.obs["layer_reviewed"].iloc[10]

    log = adata.uns["annotatability_edits"]
    assert set(log["how"]) == {"manual", "bulk", "keep"}
    assert list(log.columns[:7]) == ["cell_id", "old", "new", "how", "time", "conf", "flag"]

    # the points updated in place look exactly like a layer built from scratch
    from napari_annotatability._napari.layers import label_colors
    from napari_annotatability._napari.results_layers import curated_layer
    from napari_annotatability._napari.viewer_sync import cells_view

    fresh = curated_layer(
        cells_view(viewer.layers["DLPFC layer"]), "layer_curated", label_colors(adata, "layer")
    )
    np.testing.assert_allclose(role(viewer, "curated").face_color, fresh[1]["face_color"])
    pd.testing.assert_series_equal(
        role(viewer, "curated").features["layer_curated"], fresh[1]["features"]["layer_curated"]
    )

    for _ in range(4):
        widget.edits.undo()
    pd.testing.assert_series_equal(
        adata.obs["layer_curated"].astype(str), original.astype(str), check_names=False
    )
    assert not adata.obs["layer_reviewed"].any()
    assert not widget.edits.undo_button.enabled and widget.edits.redo_button.enabled
    widget.edits.redo()
    assert list(adata.obs["layer_curated"].iloc[:3]) == ["WM"] * 3
    pd.testing.assert_series_equal(adata.obs["layer"], original)  # never touched


def test_retrain_on_curated_labels_tabulates_flag_changes(dlpfc_scored, tmp_path):
    viewer = dlpfc_scored
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    # an audit trained by hand-set settings: the retrain must train the same way
    api.annotate(adata, "layer", epochs=5, suggest_epochs=5, lr=0.002, min_width=None)
    audited = adata.obs[["layer_conf", "layer_var", "layer_flag", "layer_suggested"]].copy()
    audit = dict(adata.uns["layer_annotatability"])
    widget = CurationWidget(viewer, threaded=False)
    widget.edits.accept_all()
    widget.retraining.epochs.value = 5
    widget.retraining.retrain()
    params = adata.uns["layer_curated_annotatability"]["params"]
    assert adata.uns["layer_curated_annotatability"]["label_key"] == "layer_curated"
    assert (params["lr_used"], params["epochs"]) == (0.002, 5)
    assert "min_width" not in params  # the reference's widths, as in the audit
    # the runs never mix: the audit of the original labels is whole beside the new one
    after = adata.obs[["layer_conf", "layer_var", "layer_flag", "layer_suggested"]]
    pd.testing.assert_frame_equal(after, audited)
    assert adata.uns["layer_annotatability"]["params"] == audit["params"]
    assert not np.array_equal(adata.obs["layer_curated_conf"], adata.obs["layer_conf"])
    # the filters and the export read the audit of the annotation being curated
    widget.selection.flag.value = HARD
    widget.selection.conf_min.value, widget.selection.conf_max.value = 0.0, 0.3
    expected = (adata.obs["layer_flag"] == HARD) & (adata.obs["layer_conf"] <= 0.3)
    np.testing.assert_array_equal(widget.selection.select_matching(), np.flatnonzero(expected))
    exported = pd.read_csv(widget.export.export_table(tmp_path / "curation.csv"))
    np.testing.assert_allclose(exported["conf"], audited["layer_conf"])
    # the report button writes the audit of the annotation being curated, its edits included
    page = widget.export.write_report(tmp_path / "audit.html").read_text("utf-8")
    assert page.count("data:image/png;base64,") == 2
    assert api.audit_summary(adata, "layer") in page and "logged edits" in page
    assert (exported["flag"] == audited["layer_flag"].astype(str).to_numpy()).all()
    table = adata.uns["layer_curated_flag_changes"]
    assert table.to_numpy().sum() == adata.n_obs
    expected = pd.crosstab(adata.obs["layer_flag"], adata.obs["layer_curated_flag"])
    for before in expected.index:
        for after in expected.columns:
            assert table.loc[before, after] == expected.loc[before, after]
    assert widget.retraining.changes.isVisible() or widget.retraining.changes.rowCount() == len(
        table.index
    )
    assert widget.retraining.changes.item(0, 0) is not None
    assert "changed flag" in widget.status.value
    # curation continues after a retrain: still the original annotation, undo works
    assert widget.curation.label_key == "layer"
    widget.edits.undo()
    assert (adata.obs["layer_curated"].astype(str) == adata.obs["layer"].astype(str)).all()


def test_retraining_can_be_cancelled_and_writes_nothing(dlpfc_scored, qtbot):
    viewer = dlpfc_scored
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    widget = CurationWidget(viewer)  # threaded, as in napari
    widget.edits.accept_all()
    widget.retraining.epochs.value = 10_000
    worker = widget.retraining.retrain()
    assert (
        worker is not None
        and widget.retraining.cancel_button.enabled
        and not widget.retraining.button.enabled
    )
    seen = []
    worker.yielded.connect(seen.append)
    qtbot.waitUntil(lambda: len(seen) >= 1, timeout=600_000)  # training, however slow
    with qtbot.waitSignal(worker.finished, timeout=600_000):
        widget.retraining.cancel_button.clicked.emit()
    assert "layer_curated_annotatability" not in adata.uns
    assert "layer_curated_conf" not in adata.obs
    assert widget.status.value == "Retraining cancelled: no audit of 'layer_curated' was written."
    assert widget.retraining.button.enabled and not widget.retraining.cancel_button.enabled


def test_review_queue_by_keyboard(dlpfc_scored, qtbot):
    viewer = dlpfc_scored
    viewer.window._qt_window.show()
    curation_widget = CurationWidget(viewer, threaded=False)
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review)
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    queue = review.start()
    hard = np.flatnonzero(adata.obs["layer_flag"] == HARD)
    assert len(queue) == hard.size
    score = adata.obs["layer_mislabel_score"].to_numpy()
    assert np.all(np.diff(score[queue.positions]) <= 0), "most likely wrong first"
    first = queue.current
    assert first == hard[np.argmax(score[hard])]
    source = viewer.layers["DLPFC layer"]
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], source.data[first], atol=1e-6)
    np.testing.assert_array_equal(selected_positions(role(viewer, "flags")), [first])
    assert review._progress.value.startswith(f"0 of {hard.size} reviewed")
    assert "neighbours:" in review._cell.value and adata.obs_names[first] in review._cell.value
    # the cell under review is ringed, at least 28 pixels wide at any zoom
    marker = review.marker
    assert marker in viewer.layers and marker.metadata["role"] == MARKER_ROLE
    np.testing.assert_allclose(marker.data[0], source.data[first])
    assert str(marker.symbol[0]) == "ring" and marker.canvas_size_limits[0] == 28
    assert viewer.layers.selection.active is not marker

    window = viewer.window._qt_window
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)

    qtbot.keyClick(window, Qt.Key.Key_K)  # keep: reviewed, moves on
    assert adata.obs["layer_reviewed"].iloc[first]
    second = queue.current
    assert second != first
    np.testing.assert_allclose(review.marker.data[0], source.data[second])  # the ring follows
    qtbot.keyClick(window, Qt.Key.Key_A)  # accept the suggestion
    assert adata.obs["layer_curated"].iloc[second] == adata.obs["layer_suggested"].iloc[second]
    assert review._progress.value.startswith(f"2 of {hard.size} reviewed")
    third = queue.current
    review._target.value = "WM"
    qtbot.keyClick(window, Qt.Key.Key_R)  # relabel to the chosen class
    assert adata.obs["layer_curated"].iloc[third] == "WM"
    qtbot.keyClick(window, Qt.Key.Key_U)  # undo goes back to that cell
    assert queue.current == third
    assert adata.obs["layer_curated"].iloc[third] == adata.obs["layer"].iloc[third]
    qtbot.keyClick(window, Qt.Key.Key_U, Qt.KeyboardModifier.ShiftModifier)  # redo
    assert adata.obs["layer_curated"].iloc[third] == "WM"
    qtbot.keyClick(window, Qt.Key.Key_B)
    qtbot.keyClick(window, Qt.Key.Key_N)
    # the curation widget followed every decision made in the review
    assert curation_widget.edits.undo_button.enabled
    assert "reviewed in all" in curation_widget.status.value
    review.stop()
    assert not review.shortcuts["next"].isEnabled()
    assert marker not in viewer.layers and review.marker is None
    assert set(KEYS) == set(review.shortcuts)


def test_review_before_training_notifies(dlpfc_viewer, notifications):
    review = ReviewWidget(dlpfc_viewer)
    assert review.start() is None
    assert any("train" in m.lower() for m in notifications.messages)


def test_review_of_a_layer_without_annotation_notifies(make_napari_viewer, notifications):
    viewer = make_napari_viewer()
    adata = datasets.synthetic_tissue(n_cells=100, n_genes=10, n_classes=2, seed=0)
    data, kwargs, _ = cells_layer(adata, None, name="plain cells")
    viewer.add_points(data, **kwargs)
    review = ReviewWidget(viewer)
    assert review.start() is None
    assert "The layer 'plain cells' shows no annotation to review" in notifications.messages[-1]


def test_hovering_any_layer_shows_the_curated_label_after_an_edit(dlpfc_scored):
    viewer = dlpfc_scored
    widget = CurationWidget(viewer, threaded=False)
    flags = role(viewer, "flags")
    flags.selected_data = {0, 1}
    widget.edits.new_class.value = "checked"
    widget.edits.relabel_selected()
    positions = flags.metadata["cells"]
    shown = [flags.features["layer_curated"].iloc[r] for r in (0, 1)]
    assert shown == ["checked", "checked"]
    cells = viewer.layers["DLPFC layer"]
    rows = np.flatnonzero(np.isin(np.arange(len(cells.data)), positions[:2]))
    assert list(cells.features["layer_curated"].iloc[rows]) == ["checked", "checked"]
    widget.edits.undo()
    assert flags.features["layer_curated"].iloc[0] != "checked"


def test_a_curated_anndata_is_freed_with_its_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    adata = datasets.synthetic_tissue(n_cells=200, n_genes=10, n_classes=2, seed=0)
    data, kwargs, _ = cells_layer(adata, "label", name="cells")
    viewer.add_points(data, **kwargs)
    widget = CurationWidget(viewer, threaded=False)
    viewer.layers["cells"].selected_data = {0}
    widget.edits.new_class.value = "checked"
    assert widget.edits.relabel_selected() is not None
    freed = weakref.ref(adata)
    del adata, data, kwargs
    viewer.layers.clear()
    for _ in range(3):  # napari's layer controls go with Qt's deferred deletes
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        QCoreApplication.processEvents()
    gc.collect()
    assert freed() is None  # no registry keeps the data (or its curation) alive


def test_curating_a_number_column_notifies(synthetic_viewer, notifications):
    source = synthetic_viewer.layers["cells"]
    source.metadata["adata"].obs["depth"] = np.linspace(0, 1, source.metadata["adata"].n_obs)
    source.metadata["label_key"] = "depth"
    widget = CurationWidget(synthetic_viewer, threaded=False)
    source.selected_data = {0}
    assert widget.edits.relabel_selected() is None
    assert any("not cell-type labels" in m for m in notifications.messages)
    assert "depth_curated" not in source.metadata["adata"].obs.columns


def test_save_and_export_from_the_widget(make_napari_viewer, tmp_path, load_shared):
    import anndata as ad

    from napari_annotatability.core.errors import AnnotatabilityInputError

    source_file = tmp_path / "opened.h5ad"
    load_shared("visium_mousebrain_squidpy_fixture").write_h5ad(source_file)
    viewer = make_napari_viewer()
    viewer.open(str(source_file), plugin="napari-annotatability")
    (cells,) = cells_layers(viewer)
    adata = cells.metadata["adata"]
    key = cells.metadata["label_key"]
    with pytest.warns(UserWarning, match="single cell"):  # 49 spots: tiny clusters
        api.annotate(adata, key, epochs=5, suggest_epochs=5, min_width=4)
    show_results(viewer, cells)
    widget = CurationWidget(viewer, threaded=False)
    cells.selected_data = {0, 1}
    widget.edits.new_class.value = "checked"
    widget.edits.relabel_selected()

    with pytest.raises(AnnotatabilityInputError, match="opened from"):
        widget.export.save(source_file)
    saved = widget.export.save(tmp_path / "curated.zarr")
    back = ad.read_zarr(saved)
    assert list(back.obs[f"{key}_curated"].iloc[:2]) == ["checked", "checked"]
    assert len(back.uns["annotatability_edits"]) == 2
    # the image survives the round trip
    library = next(iter(adata.uns["spatial"]))
    np.testing.assert_array_equal(
        back.uns["spatial"][library]["images"]["lowres"],
        adata.uns["spatial"][library]["images"]["lowres"],
    )
    table = pd.read_csv(widget.export.export_table(tmp_path / "curation.tsv"), sep="\t")
    assert list(table.columns) == [
        "cell_id",
        "original",
        "curated",
        "mislabel_score",
        "conf",
        "var",
        "flag",
        "suggestion",
        "reviewed",
    ]
    assert table["curated"].iloc[0] == "checked" and table["reviewed"].iloc[0]
    widget.export.save(source_file, overwrite=True)  # confirmed: replaces the opened file
    assert ad.read_h5ad(source_file).obs[f"{key}_curated"].iloc[0] == "checked"


def test_reopen_continues_the_curation(dlpfc_scored, make_napari_viewer, tmp_path):
    viewer = dlpfc_scored
    widget = CurationWidget(viewer, threaded=False)
    role(viewer, "flags").selected_data = {0, 1, 2}
    widget.edits.target.value = "WM"
    widget.edits.relabel_selected()
    widget.edits.accept_all()
    saved = widget.export.save(tmp_path / "curated.h5ad")
    before = viewer.layers["DLPFC layer"].metadata["adata"]

    again = make_napari_viewer()
    again.open(str(saved), plugin="napari-annotatability")
    reopened = CurationWidget(again, threaded=False)
    curation = reopened.curation
    assert curation.label_key == "layer"
    np.testing.assert_array_equal(curation.labels(), widget.curation.labels())
    assert curation.n_reviewed() == widget.curation.n_reviewed()
    assert len(curation.log) == len(before.uns["annotatability_edits"])
    # and goes on: one more edit is logged after the earlier ones
    (cells,) = cells_layers(again)
    cells.selected_data = {3}
    reopened.edits.keep_selected()
    assert len(curation.log) == len(before.uns["annotatability_edits"]) + 1
    assert reopened.edits.show_curated() is not None


def test_a_new_audit_ends_a_review_of_the_flags_it_replaced(dlpfc_scored):
    from napari_annotatability._qt.training_widget import TrainingWidget

    viewer = dlpfc_scored
    review = ReviewWidget(viewer)
    assert review.start() is not None
    trainer = TrainingWidget(viewer, threaded=False)
    trainer._epochs.value, trainer._suggest_epochs.value = 3, 3
    trainer.train()  # a new audit of the same annotation: new flags, new queue
    assert review.queue is None and not review.shortcuts["next"].isEnabled()
    assert review._cell.value.startswith("A new audit of 'layer' was written")
    assert review.start() is not None  # the new flags can be reviewed at once


def test_the_audit_model_relays_the_selection_of_any_layer_of_its_data(dlpfc_scored):
    from napari_annotatability._napari.audit_model import audit_of

    viewer = dlpfc_scored
    model = audit_of(viewer.layers["DLPFC layer"], viewer)
    model.follow_selection(viewer)
    seen = []
    model.events.selection.connect(lambda positions, layer: seen.append((positions, layer)))
    flags = role(viewer, "flags")
    flags.selected_data = {0, 3}
    positions, layer = seen[-1]
    assert layer is flags
    np.testing.assert_array_equal(positions, np.sort(flags.metadata["cells"][[0, 3]]))
    # a layer added later is followed too
    curated = CurationWidget(viewer, threaded=False).edits.show_curated()
    curated.selected_data = {5}
    assert seen[-1][1] is curated and list(seen[-1][0]) == [curated.metadata["cells"][5]]
