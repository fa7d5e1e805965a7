"""The reader on SpatialData stores: images under the cells, sections side by side."""

from __future__ import annotations

import numpy as np
import pytest

spatialdata = pytest.importorskip("spatialdata")

from napari.layers import Image, Points  # noqa: E402

from napari_annotatability._napari.reader import napari_get_reader  # noqa: E402

PLUGIN = "napari-annotatability"


def _kinds(viewer):
    return [(type(layer).__name__, layer.name) for layer in viewer.layers]


def test_a_store_opens_as_its_image_under_its_cells(make_napari_viewer, dlpfc_store):
    assert napari_get_reader(str(dlpfc_store)) is not None
    viewer = make_napari_viewer()
    viewer.open(str(dlpfc_store), plugin=PLUGIN)
    assert _kinds(viewer) == [("Image", "cell_boundaries_image"), ("Points", "layer")]
    image, cells = viewer.layers
    assert image.multiscale and image.rgb
    link = cells.metadata["spatialdata"]
    assert link.table_name == "table" and link.path == dlpfc_store
    assert cells.metadata["source_path"] == str(dlpfc_store)
    # every cell lies on the image, in world coordinates (its scale transformation honoured)
    (top, left), (bottom, right) = image.extent.world[:, -2:]
    data = np.asarray(cells.data)
    assert (data >= [top, left]).all() and (data <= [bottom, right]).all()
    # pixels of half the spot spacing (2 / 4 cells): the scale is applied, not 1 unit a pixel
    width = image.extent.world[1, -1] - image.extent.world[0, -1]
    assert width == pytest.approx(0.5 * image.data[0].shape[1], rel=0.01)


def test_sections_open_side_by_side_each_on_its_image(make_napari_viewer, two_section_store):
    viewer = make_napari_viewer()
    viewer.open(str(two_section_store), plugin=PLUGIN)
    images = [layer for layer in viewer.layers if isinstance(layer, Image)]
    cells = [layer for layer in viewer.layers if isinstance(layer, Points)]
    assert len(images) == len(cells) == 2 and all(layer.visible for layer in viewer.layers)
    assert {layer.name for layer in cells} == {"A_cells layer", "B_cells layer"}
    boxes = [np.asarray(layer.extent.world)[:, -1] for layer in cells]
    (low_a, high_a), (low_b, high_b) = boxes
    assert high_a < low_b or high_b < low_a  # no overlap
    for layer in cells:  # each section on its own image
        image = viewer.layers[f"{layer.metadata['library_id']}_image"]
        (top, left), (bottom, right) = image.extent.world[:, -2:]
        data = np.asarray(layer.data)
        assert (data >= [top, left]).all() and (data <= [bottom, right]).all()
    # one AnnData for both sections: audited together
    assert cells[0].metadata["adata"] is cells[1].metadata["adata"]


def test_label_masks_and_multichannel_images(make_napari_viewer, tmp_path):
    import pandas as pd
    from spatialdata.datasets import blobs

    sdata = blobs()
    table = sdata.tables["table"]
    table.obs["cell_type"] = pd.Categorical(np.where(np.arange(table.n_obs) % 2, "a", "b"))
    store = tmp_path / "blobs.zarr"
    sdata.write(store)
    viewer = make_napari_viewer()
    viewer.open(str(store), plugin=PLUGIN)
    cells = viewer.layers["cell_type"]
    assert len(cells.data) == 26  # one point per labelled cell, at its centroid
    centroids = spatialdata.get_centroids(sdata["blobs_labels"]).compute()
    ids = cells.metadata["adata"].obs["instance_id"].to_numpy()
    np.testing.assert_allclose(cells.data, centroids.loc[ids, ["y", "x"]].to_numpy())
    channels = [layer.name for layer in viewer.layers if isinstance(layer, Image)]
    assert "blobs_image 0" in channels and "blobs_multiscale_image 2" in channels


def test_a_folder_that_is_no_store_is_left_to_other_readers(tmp_path):
    (tmp_path / "images.zarr").mkdir()
    (tmp_path / "images.zarr" / "zarr.json").write_text('{"attributes": {}}')
    assert napari_get_reader(str(tmp_path / "images.zarr")) is None
