"""The training widget: real viewers, real torch training, threaded and not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from napari.layers import Points

from napari_annotatability._napari.viewer_sync import RUNNING, result_layer
from napari_annotatability._qt.training_widget import TrainingWidget, input_choices, parse_input
from napari_annotatability.core import keys
from napari_annotatability.core.scores import FLAG_CATEGORIES, HARD

pytestmark = pytest.mark.gui


def quick_settings(widget, *, epochs: int = 3, suggest_epochs: int = 3) -> None:
    """Few epochs so that a real training run takes seconds."""
    widget._epochs.value = epochs
    widget._suggest_epochs.value = suggest_epochs


def roles(viewer) -> dict[str, Points]:
    return {layer.metadata["role"]: layer for layer in viewer.layers if "role" in layer.metadata}


def test_choices_follow_the_data(synthetic_viewer):
    widget = TrainingWidget(synthetic_viewer, threaded=False)
    adata = synthetic_viewer.layers["cells"].metadata["adata"]
    assert widget._cells.value is synthetic_viewer.layers["cells"]
    assert widget._label.value == "label"
    # categorical columns are offered first
    assert widget._label.choices[:2] == ("label", "true_label")
    assert widget._input.choices == tuple(input_choices(adata))
    assert "layers: counts" in widget._input.choices
    assert parse_input("layers: counts") == {"layer": "counts", "use_rep": None}
    assert parse_input("obsm: X_pca") == {"layer": None, "use_rep": "X_pca"}
    assert widget._device.choices[:2] == ("auto", "cpu")


def test_learning_rate_and_width_default_to_ours_and_can_be_the_reference(synthetic_viewer):
    widget = TrainingWidget(synthetic_viewer, threaded=False)
    settings = widget.settings()
    assert (settings["lr"], settings["min_width"], settings["min_steps"]) == ("auto", 64, 5)
    assert not widget._lr.enabled, "the number is unused while the rate comes from the data"
    widget._auto_lr.value = False
    widget._min_width.value = 0
    widget._min_steps.value = 0
    assert widget._lr.enabled
    settings = widget.settings()
    assert (settings["lr"], settings["min_width"], settings["min_steps"]) == (0.001, None, None)
    quick_settings(widget)
    widget.train()
    params = (
        synthetic_viewer.layers["cells"].metadata["adata"].uns["label_annotatability"]["params"]
    )
    assert params["lr_used"] == 0.001 and "min_width" not in params


def test_flags_from_the_evidence_or_the_training_dynamics(synthetic_viewer):
    widget = TrainingWidget(synthetic_viewer, threaded=False)
    settings = widget.settings()
    assert (settings["flags"], settings["spatial_neighbours"]) == ("evidence", 10)
    assert widget._neighbours.enabled and not widget._suggest_epochs.enabled
    quick_settings(widget)
    widget.train()
    adata = synthetic_viewer.layers["cells"].metadata["adata"]
    shown = roles(synthetic_viewer)
    assert {"mislabel score", "dynamics flags", "flags"} <= set(shown)
    score = shown["mislabel score"]
    np.testing.assert_allclose(
        score.features["label_mislabel_score"], adata.obs["label_mislabel_score"]
    )
    # likely wrong labels bright: the highest score gets the brightest colour
    order = np.argsort(score.features["label_mislabel_score"].to_numpy())
    assert score.face_color[order[-1], :3].sum() > score.face_color[order[0], :3].sum()
    assert "look wrong" in widget._status.value

    widget._flags.value = "training dynamics"
    assert not widget._neighbours.enabled and widget._suggest_epochs.enabled
    assert widget.settings()["flags"] == "dynamics"
    widget.train()
    shown = roles(synthetic_viewer)
    assert "mislabel score" not in shown, "no evidence, no score layer"
    assert "label_mislabel_score" not in adata.obs
    assert (adata.obs["label_flag"] == adata.obs["label_dynamics_flag"]).all()


def test_train_shows_results_layers_and_rerun_replaces_them(synthetic_viewer):
    viewer = synthetic_viewer
    widget = TrainingWidget(viewer, threaded=False)
    quick_settings(widget, epochs=20, suggest_epochs=10)
    widget.train()
    adata = viewer.layers["cells"].metadata["adata"]
    shown = roles(viewer)
    assert {"confidence", "variability", "flags"} <= set(shown)
    assert RUNNING not in shown, "the running layer goes once the run is done"
    flags = shown["flags"]
    # every per-cell value is in the features, so hovering shows it
    for column in ("cell_id", "label", "label_conf", "label_var", "label_flag"):
        assert column in flags.features.columns
    np.testing.assert_allclose(flags.features["label_conf"], adata.obs["label_conf"])
    assert set(flags.features["label_flag"].astype(str)) <= set(FLAG_CATEGORIES)
    # the source layer's hover now shows the scores too
    assert "label_conf" in viewer.layers["cells"].features.columns
    # only the flags are shown at first, the other results wait behind their eye icon
    assert flags.visible and not shown["confidence"].visible
    assert not viewer.layers["cells"].visible, "flags cover every cell: labels hidden below"
    # flags on top of the stack, above the cells
    names = [layer.name for layer in viewer.layers]
    assert names.index("label flags") == len(names) - 1
    if "suggested" in shown:
        suggested = shown["suggested"]
        differs = adata.obs["label_suggested"].notna() & (
            adata.obs["label_suggested"].astype(str) != adata.obs["label"].astype(str)
        )
        assert len(suggested.data) == differs.sum()
        assert (suggested.features["label_flag"] == HARD).all()
    # confidence colours: low confidence bright, high dark
    conf = shown["confidence"]
    order = np.argsort(conf.features["label_conf"].to_numpy())
    low, high = conf.face_color[order[0], :3].sum(), conf.face_color[order[-1], :3].sum()
    assert low > high

    # the training curves are kept for the evidence widget (cells x epochs)
    assert adata.obsm[keys.record_key("label")].shape == (adata.n_obs, 20)

    n_layers = len(viewer.layers)
    shown["confidence"].visible = True
    widget._seed.value = 1
    widget._keep_curves.value = False
    widget.train()
    assert len(viewer.layers) == n_layers, "a re-run replaces the results layers"
    assert keys.record_key("label") not in adata.obsm, "no stale curves of the first run"
    again = roles(viewer)
    assert again["confidence"] is shown["confidence"] and again["confidence"].visible
    np.testing.assert_allclose(again["flags"].features["label_conf"], adata.obs["label_conf"])


def test_threaded_training_on_real_data(dlpfc_viewer, qtbot):
    viewer = dlpfc_viewer
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    quick_settings(widget, epochs=4, suggest_epochs=3)
    worker = widget.train()
    assert worker is not None
    # the worker may finish before a signal could be connected: wait on its effect
    qtbot.waitUntil(lambda: widget.worker is None, timeout=180_000)
    adata = viewer.layers["DLPFC layer"].metadata["adata"]
    assert adata.obs["layer_conf"].notna().all()
    assert adata.uns["layer_annotatability"]["params"]["epochs"] == 4
    shown = roles(viewer)
    assert {"confidence", "variability", "flags"} <= set(shown)
    assert len(shown["flags"].data) == adata.n_obs
    assert RUNNING not in shown
    assert "Done in" in widget._status.value
    assert widget._train.enabled and not widget._cancel.enabled


def test_cancel_keeps_the_previous_results(synthetic_viewer, qtbot):
    viewer = synthetic_viewer
    widget = TrainingWidget(viewer, threaded=False)
    quick_settings(widget, epochs=5)
    widget.train()
    adata = viewer.layers["cells"].metadata["adata"]
    before = adata.obs[["label_conf", "label_var", "label_flag"]].copy()
    flags_before = roles(viewer)["flags"].features["label_conf"].to_numpy().copy()

    widget.threaded = True
    widget._epochs.value = 5000
    widget._seed.value = 7
    worker = widget.train()
    seen = []
    worker.yielded.connect(seen.append)
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=60_000)
    # the running confidence is on the tissue while the network trains
    qtbot.waitUntil(lambda: result_layer(viewer, viewer.layers["cells"], RUNNING) is not None)
    with qtbot.waitSignal(worker.aborted, timeout=60_000):
        widget._cancel.clicked.emit()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=10_000)
    assert len(seen) < 5000
    pd.testing.assert_frame_equal(adata.obs[["label_conf", "label_var", "label_flag"]], before)
    np.testing.assert_array_equal(roles(viewer)["flags"].features["label_conf"], flags_before)
    assert RUNNING not in roles(viewer)
    assert "Cancelled" in widget._status.value
    assert widget._train.enabled


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("score", "floats", "continuous"),
        ("one_class", "A", "fewer than 2 classes"),
    ],
)
def test_bad_label_column_notifies_without_crash(
    synthetic_viewer, notifications, column, values, expected
):
    viewer = synthetic_viewer
    adata = viewer.layers["cells"].metadata["adata"]
    if values == "floats":
        adata.obs[column] = np.random.default_rng(0).normal(size=adata.n_obs)
    else:
        adata.obs[column] = pd.Categorical([values] * adata.n_obs)
    widget = TrainingWidget(viewer, threaded=False)
    widget._label.reset_choices()
    widget._label.value = column
    quick_settings(widget)
    widget.train()
    assert any(expected in m for m in notifications.messages), notifications.messages
    assert expected in widget._status.value
    assert "label_conf" not in adata.obs.columns
    assert not roles(viewer)
    assert widget._train.enabled


def test_bad_label_column_threaded_notifies(synthetic_viewer, notifications, qtbot):
    viewer = synthetic_viewer
    adata = viewer.layers["cells"].metadata["adata"]
    adata.obs["one_class"] = pd.Categorical(["A"] * adata.n_obs)
    widget = TrainingWidget(viewer)
    widget._label.reset_choices()
    widget._label.value = "one_class"
    worker = widget.train()
    assert worker is not None
    # the worker may finish before a signal could be connected: wait on its effect
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert any("fewer than 2 classes" in m for m in notifications.messages), notifications.messages
    assert widget.worker is None and widget._train.enabled


def test_no_cells_notifies(make_napari_viewer, notifications):
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer, threaded=False)
    assert widget.train() is None
    assert any("No cells to audit" in m for m in notifications.messages)


def test_widgets_open_from_the_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    expected = {
        "Audit annotation": "TrainingWidget",
        "Data map": "DataMapWidget",
        "Genes": "GenesWidget",
        "Trainability graph": "GraphWidget",
        "Curate annotation": "CurationWidget",
        "Review flagged cells": "ReviewWidget",
        "Cell evidence": "EvidenceWidget",
        "Class report": "ClassReportWidget",
        "Colour legend": "LegendWidget",
    }
    for name, cls in expected.items():
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", name)
        assert type(widget).__name__ == cls


def test_the_widget_starts_from_the_api_defaults(synthetic_viewer):
    import inspect

    from napari_annotatability import api

    settings = TrainingWidget(synthetic_viewer, threaded=False).settings()
    defaults = inspect.signature(api.annotate_steps).parameters
    for name, value in settings.items():
        assert value == defaults[name].default, name


def test_an_audit_of_another_annotation_is_what_the_layer_shows_next(synthetic_viewer):
    from napari_annotatability._napari.audit_model import audited_key

    viewer = synthetic_viewer
    source = viewer.layers["cells"]
    # as after a retrain on curated labels: the layer shows the curated column's audit
    source.metadata.update(label_key="label_curated", curating="label")
    widget = TrainingWidget(viewer, threaded=False)
    quick_settings(widget)
    widget._label.value = "true_label"
    widget.train()
    assert source.metadata["label_key"] == "true_label" and "curating" not in source.metadata
    assert audited_key(source) == "true_label"
    assert roles(viewer)["flags"].metadata["label_key"] == "true_label"
