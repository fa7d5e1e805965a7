"""The genes and graph widgets on real audits of real and synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from napari.layers import Vectors

from napari_annotatability import api
from napari_annotatability._napari.viewer_sync import show_results
from napari_annotatability._qt.genes_widget import GenesWidget
from napari_annotatability._qt.graph_widget import GraphWidget
from napari_annotatability.core.errors import AnnotatabilityInputError

pytestmark = pytest.mark.gui


def role_layers(viewer, role):
    return [layer for layer in viewer.layers if layer.metadata.get("role") == role]


def test_gene_table_click_shows_expression_and_exports(trained_viewer, tmp_path, qtbot):
    viewer = trained_viewer
    widget = GenesWidget(viewer)  # scores in a worker thread: the GUI stays responsive
    with pytest.raises(AnnotatabilityInputError, match="Score genes"):
        widget.export_csv(tmp_path / "early.csv")
    widget._matrix.value = "counts"
    assert widget.score() is not None and not widget._score.enabled
    qtbot.waitUntil(lambda: widget.worker is None, timeout=600_000)  # a state, not a time
    table = widget.table
    adata = viewer.layers["cells"].metadata["adata"]
    assert set(table["direction"]) == {"high", "low"}
    assert widget.view.rowCount() == len(table)
    assert widget.view.item(0, 0).text() == table["gene"].iloc[0]
    widget._direction.value = "low"
    assert widget.view.rowCount() == (table["direction"] == "low").sum()
    assert "genes scored" in widget._status.value

    # clicking a row shows that gene on the tissue, one layer replaced per gene
    widget.view.cellClicked.emit(0, 0)
    gene = widget.view.item(0, 0).text()
    (layer,) = role_layers(viewer, "expression")
    counts = adata.layers["counts"]
    column = counts[:, adata.var_names.get_loc(gene)]
    expected = column.toarray().ravel() if sp.issparse(column) else np.asarray(column).ravel()
    np.testing.assert_allclose(layer.features["expression"], expected)
    assert layer.metadata["gene"] == gene and layer.visible
    widget.view.cellClicked.emit(1, 0)
    (again,) = role_layers(viewer, "expression")
    assert again.metadata["gene"] == widget.view.item(1, 0).text()

    written = widget.export_csv(tmp_path / "genes.csv")
    pd.testing.assert_frame_equal(pd.read_csv(written), table, check_dtype=False)
    with pytest.raises(AnnotatabilityInputError, match="already exists"):
        widget.export_csv(written)


def test_genes_before_training_notifies(synthetic_viewer, notifications):
    widget = GenesWidget(synthetic_viewer, threaded=False)
    assert widget.score() is None
    assert "No audit of 'label' yet: train in 'Audit annotation' first." in notifications.messages


def test_graph_written_in_scanpy_layout_and_edges_drawn(trained_viewer):
    viewer = trained_viewer
    widget = GraphWidget(viewer, threaded=False)
    widget._k.value = 8
    widget._edges.value = True
    widget.build()
    adata = viewer.layers["cells"].metadata["adata"]
    assert adata.uns["trainability"]["params"]["n_neighbors"] == 8
    assert "X_pca" in adata.obsm, "PCA is computed for the graph when missing"
    conn = adata.obsp["trainability_connectivities"]
    (edges,) = role_layers(viewer, "graph")
    assert isinstance(edges, Vectors)
    assert len(edges.data) == sp.triu(conn, k=1).nnz
    # each vector joins two cells' positions on the tissue
    coords = viewer.layers["cells"].data
    starts = edges.data[:, 0]
    ends = starts + edges.data[:, 1]
    upper = sp.triu(conn, k=1).tocoo()
    np.testing.assert_allclose(starts, coords[upper.row])
    np.testing.assert_allclose(ends, coords[upper.col])
    # a rebuild replaces the edges layer; hiding them keeps the graph
    widget._k.value = 5
    widget.build()
    (edges,) = role_layers(viewer, "graph")
    assert len(edges.data) == sp.triu(adata.obsp["trainability_connectivities"], k=1).nnz
    widget._edges.value = False
    assert not edges.visible


def test_graph_threaded_on_real_data(dlpfc_viewer, qtbot):
    viewer = dlpfc_viewer
    source = viewer.layers["DLPFC layer"]
    adata = source.metadata["adata"]
    api.annotate(adata, "layer", epochs=3, suggest=False)
    show_results(viewer, source)
    widget = GraphWidget(viewer)
    worker = widget.build()
    assert worker is not None
    # the worker may finish before a signal could be connected: wait on its effect
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    assert adata.obsp["trainability_connectivities"].shape == (adata.n_obs, adata.n_obs)
    assert "neighbors_key='trainability'" in widget._status.value
    assert widget._build.enabled


def test_graph_before_training_notifies(synthetic_viewer, notifications):
    widget = GraphWidget(synthetic_viewer, threaded=False)
    widget.build()
    message = "No audit of 'label' yet: train in 'Audit annotation' first."
    assert message in notifications.messages, notifications.messages
    assert widget._status.value == message


def test_graph_keeps_an_existing_key_unless_replacing(trained_viewer, notifications):
    widget = GraphWidget(trained_viewer, threaded=False)
    widget._k.value = 5
    widget.build()
    widget._overwrite.value = False
    widget.build()
    assert any("already holds a graph" in m for m in notifications.messages)


def test_scaled_data_scores_genes_without_a_count_cut_off(dlpfc_viewer):
    source = dlpfc_viewer.layers["DLPFC layer"]
    adata = source.metadata["adata"]
    api.annotate(adata, "layer", epochs=3, suggest=False)
    widget = GenesWidget(dlpfc_viewer, threaded=False)
    assert not widget._count_filter.value, "the bundled X is scaled (negative values)"
    widget.score()
    table = widget.table
    assert len(table) == 2 * adata.n_vars
    widget._count_filter.value = True
    widget._min_counts.value = 1e9
    widget.score()
    assert widget._status.value.startswith("0 genes scored")


def test_edges_of_the_selected_cells_only(trained_viewer):
    viewer = trained_viewer
    widget = GraphWidget(viewer, threaded=False)
    widget._k.value = 6
    widget.build()
    adata = viewer.layers["cells"].metadata["adata"]
    viewer.layers["cells"].selected_data = {0, 5}
    widget._edges.value = True
    (edges,) = role_layers(viewer, "graph")
    upper = sp.triu(adata.obsp["trainability_connectivities"], k=1).tocoo()
    touching = np.isin(upper.row, [0, 5]) | np.isin(upper.col, [0, 5])
    assert len(edges.data) == touching.sum() > 0
    assert "2 selected cells" in widget._status.value
