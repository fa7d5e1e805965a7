"""The class report widget: the numbers of the audit, and matrix entries that select cells."""

from __future__ import annotations

import numpy as np

from napari_annotatability import api
from napari_annotatability._napari.selection import current_selection
from napari_annotatability._napari.viewer_sync import write_results
from napari_annotatability._qt.class_report_widget import SHOWN, ClassReportWidget
from napari_annotatability.core import keys


def test_the_widget_shows_the_class_report_and_selects_a_matrix_entry(trained_viewer):
    viewer = trained_viewer
    widget = ClassReportWidget(viewer)
    viewer.window.add_dock_widget(widget)
    source = viewer.layers["cells"]
    adata = source.metadata["adata"]
    report = api.class_report(adata, "label")
    # the class table holds the report's numbers, row for row
    assert widget.classes.rowCount() == len(report)
    headers = [widget.classes.horizontalHeaderItem(c).text() for c in range(len(SHOWN))]
    assert headers == [header for _, header in SHOWN]
    for row, name in enumerate(report.index):
        assert widget.classes.verticalHeaderItem(row).text() == name
        assert widget.classes.item(row, 0).text() == f"{report.loc[name, 'cells']:,}"
        assert widget.classes.item(row, 1).text() == f"{report.loc[name, 'flagged']:,}"
    assert widget._summary.value == api.audit_summary(adata, "label")
    # clicking the largest matrix entry selects exactly those cells on the layers
    matrix = api.suggestion_matrix(adata, "label")
    row, column = np.unravel_index(np.argmax(matrix.to_numpy()), matrix.shape)
    chosen = widget.select_entry(int(row), int(column))
    assert chosen.size == matrix.iloc[row, column] > 0
    labels = adata.obs["label"].astype(str).to_numpy()[chosen]
    suggested = adata.obs[keys.suggestion_key("label")].astype(str).to_numpy()[chosen]
    assert set(labels) == {matrix.index[row]} and set(suggested) == {matrix.columns[column]}
    np.testing.assert_array_equal(current_selection(viewer, adata), np.sort(chosen))
    assert f"Selected {chosen.size:,} cells" in widget._status.value


def test_a_new_audit_refreshes_the_widget(synthetic_viewer):
    widget = ClassReportWidget(synthetic_viewer)
    assert widget.classes.rowCount() == 0 and "train" in widget._summary.value
    source = synthetic_viewer.layers["cells"]
    result = api.annotate_steps(source.metadata["adata"], "label", epochs=10, suggest=False)
    write_results(synthetic_viewer, source.metadata["adata"], api.run_steps(result))
    assert widget.classes.rowCount() == source.metadata["adata"].obs["label"].nunique()
