"""Fixtures for the dock widgets: real viewers holding real (small) data."""

from __future__ import annotations

import pytest
from napari.utils.notifications import notification_manager

from napari_annotatability import datasets
from napari_annotatability._napari.layers import cells_layer


@pytest.fixture
def synthetic_viewer(make_napari_viewer):
    """A viewer with a small synthetic tissue (known flips) as its cells layer."""
    viewer = make_napari_viewer()
    adata = datasets.synthetic_tissue(n_cells=600, n_genes=60, n_classes=4, seed=3)
    data, kwargs, _ = cells_layer(adata, "label", name="cells")
    viewer.add_points(data, **kwargs)
    return viewer


@pytest.fixture
def dlpfc_viewer(make_napari_viewer):
    """A viewer with the bundled real Visium DLPFC sample, opened from File > Open Sample."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-annotatability", "visium_dlpfc")
    return viewer


@pytest.fixture
def add_slips():
    """Move 5% of an annotation's labels (returns their mask).

    The bundled section's manual layers hold no isolated wrong labels the evidence can
    find (docs/quality.md), so tests that act on Hard-to-learn cells add some.
    """
    return datasets.add_label_errors


@pytest.fixture
def notifications():
    """The napari notifications dispatched during the test."""
    start = len(notification_manager.records)

    class Recorded:
        @property
        def messages(self) -> list[str]:
            return [str(n.message) for n in notification_manager.records[start:]]

    return Recorded()


@pytest.fixture(scope="session")
def audited_synthetic():
    """The synthetic tissue after a real (short) audit, curves kept; trained once a session."""
    from napari_annotatability import api

    adata = datasets.synthetic_tissue(n_cells=600, n_genes=60, n_classes=4, seed=3)
    api.annotate(adata, "label", epochs=30, suggest_epochs=10, store_record=True)
    return adata


@pytest.fixture
def trained_viewer(make_napari_viewer, audited_synthetic):
    """A viewer on a copy of the audited synthetic tissue, with its result layers shown."""
    from napari_annotatability._napari.viewer_sync import show_results

    viewer = make_napari_viewer()
    data, kwargs, _ = cells_layer(audited_synthetic.copy(), "label", name="cells")
    viewer.add_points(data, **kwargs)
    show_results(viewer, viewer.layers["cells"])
    return viewer
