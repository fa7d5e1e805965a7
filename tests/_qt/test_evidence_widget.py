"""The cell evidence widget on a real viewer after a real audit (curves kept)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from napari_annotatability._napari.layers import label_colors
from napari_annotatability._napari.selection import layer_positions, select_cells
from napari_annotatability._qt.evidence_widget import EvidenceWidget
from napari_annotatability.core import keys
from napari_annotatability.core.scores import HARD


def test_evidence_follows_the_selected_cell_and_shows_the_audit(trained_viewer, qtbot):
    viewer = trained_viewer
    adata = viewer.layers["cells"].metadata["adata"]
    record = adata.obsm[keys.record_key("label")]
    n_epochs = record.shape[1]
    widget = EvidenceWidget(viewer)
    qtbot.addWidget(widget.native)
    assert widget.evidence is None
    flags = adata.obs[keys.flag_key("label")].astype(str).to_numpy()
    position = int(np.flatnonzero(flags == HARD)[0])
    select_cells(viewer, adata, np.array([position]))  # as the review queue does
    evidence = widget.evidence
    assert evidence is not None and evidence.position == position
    # what is drawn is the audit's: the curve, the top classes, the genes, the neighbours
    np.testing.assert_allclose(widget.curve.curve, record[position])
    assert widget.curve.band.shape == (3, n_epochs)
    probs = adata.obsm[keys.class_probabilities_key("label")][position]
    classes = adata.uns[keys.audit_key("label")]["classes"]
    top = np.argsort(-probs)[:3]
    assert [name for name, *_ in widget.classes.rows] == [classes[i] for i in top]
    np.testing.assert_allclose([p for _, p, _ in widget.classes.rows], probs[top], rtol=1e-6)
    colours = label_colors(adata, "label")
    assert widget.classes.rows[0][2].name() == colours[classes[top[0]]].lower()
    suggestion = adata.obs[keys.suggestion_key("label")].iloc[position]
    assert evidence.other == suggestion
    assert len(widget.genes.rows) == len(evidence.genes) > 0
    assert widget.neighbourhood.points is not None
    assert len(widget.neighbourhood.points) >= 2  # the cell and some around it
    header = widget._header.text()
    assert adata.obs_names[position] in header and HARD in header and suggestion in header
    cut = adata.uns[keys.audit_key("label")]["evidence"]["hard_cutoff"]
    assert f"{cut:.3f}" in widget._reason.text()
    assert "MB" in widget._memory.text()
    # several selected cells, and other layers coming, leave the shown cell alone
    select_cells(viewer, adata, np.array([0, 1, 2]))
    index = widget.index()
    viewer.add_image(np.zeros((4, 4)), name="unrelated")
    assert widget.evidence.position == position and widget.index() is index
    # the plots paint without error at the widget's size
    widget.native.resize(420, 900)
    widget.native.show()
    qtbot.waitExposed(widget.native)
    image = widget.native.grab().toImage()
    assert image.width() > 0


def test_evidence_follows_the_mouse_on_any_layer_of_the_data(trained_viewer, qtbot):
    viewer = trained_viewer
    widget = EvidenceWidget(viewer)
    qtbot.addWidget(widget.native)
    flags = next(layer for layer in viewer.layers if layer.metadata.get("role") == "flags")
    viewer.layers.selection.active = flags
    flags.visible = True
    row = 42
    world = flags.data[row] * flags.scale + flags.translate
    widget._on_mouse_move(viewer, SimpleNamespace(position=tuple(world)))
    expected = int(layer_positions(flags)[row])
    qtbot.waitUntil(
        lambda: widget.evidence is not None and widget.evidence.position == expected, timeout=5000
    )
    widget._hover.value = False
    other = flags.data[7] * flags.scale + flags.translate
    widget._on_mouse_move(viewer, SimpleNamespace(position=tuple(other)))
    assert widget._pending is None and widget.evidence.position == expected
    widget.release()
    assert widget._on_mouse_move not in viewer.mouse_move_callbacks


def test_evidence_says_what_is_missing(synthetic_viewer, qtbot):
    widget = EvidenceWidget(synthetic_viewer)
    qtbot.addWidget(widget.native)
    assert "No audit of 'label' yet" in widget._header.text()
    assert widget.show_cell(0) is None
