"""The colour legend follows the active layer: categories with counts, or a colour map."""

from __future__ import annotations

import numpy as np

from napari_annotatability._napari.results_layers import FLAG_COLORS, curated_layer
from napari_annotatability._napari.viewer_sync import cells_view, result_layer
from napari_annotatability._qt.legend_widget import LegendWidget, legend_entries
from napari_annotatability.core import keys
from napari_annotatability.core.curation import curated_key


def test_the_legend_of_flags_confidence_and_curated_labels(trained_viewer):
    viewer = trained_viewer
    widget = LegendWidget(viewer)
    source = viewer.layers["cells"]
    adata = source.metadata["adata"]
    flags = result_layer(viewer, source, "flags")
    viewer.layers.selection.active = flags
    rows = widget.show_legend()
    counts = adata.obs[keys.flag_key("label")].astype(str).value_counts()
    assert {name: count for name, _, count in rows} == counts.to_dict()
    for name, colour, _ in rows:
        assert colour == FLAG_COLORS[name]
    assert widget.table.rowCount() == len(rows)
    assert widget.table.item(0, 0).text() == rows[0][0]
    assert "flags" in widget._title.value
    # a colour map: its two ends
    confidence = result_layer(viewer, source, "confidence")
    viewer.layers.selection.active = confidence
    title, rows = legend_entries(confidence)
    assert keys.conf_key("label") in title and len(rows) == 2
    assert widget.table.rowCount() == 2
    # colours set per point (curated labels): grouped by the feature the layer names
    curated = curated_key("label")
    adata.obs[curated] = adata.obs["label"].copy()
    colours = {
        str(c): "#ff0000" if i == 0 else "#0000ff"
        for i, c in enumerate(adata.obs["label"].cat.categories)
    }
    coords, kwargs, _ = curated_layer(cells_view(source), curated, colours)
    layer = viewer.add_points(coords, **kwargs)
    title, rows = legend_entries(layer)
    assert title == curated
    expected = adata.obs["label"].astype(str).value_counts()
    assert {name: count for name, _, count in rows} == expected.to_dict()
    assert dict((name, colour) for name, colour, _ in rows) == colours
    # a layer without colours to explain
    viewer.layers.selection.active = None
    widget.show_legend()
    assert widget.table.rowCount() == 0 and "Select a layer" in widget._title.value
    assert np.all([isinstance(r[2], int) for r in rows])
    # an image as the active layer has no legend, and leaving it for a Points layer works
    image = viewer.add_image(np.zeros((4, 4)))
    viewer.layers.selection.active = image
    assert widget.table.rowCount() == 0 and "no colour legend" in widget._title.value
    viewer.layers.selection.active = flags
    assert widget.table.rowCount() == len(legend_entries(flags)[1]) > 0
