"""What the reader tells a person about data it had to change or leave out."""

from __future__ import annotations

import numpy as np
import pytest

from napari_annotatability import datasets

pytestmark = pytest.mark.gui


def test_a_third_coordinate_column_is_reported(make_napari_viewer, notifications, tmp_path):
    adata = datasets.synthetic_tissue(n_cells=100, n_genes=10, n_classes=2, seed=0)
    z = np.repeat([0.0, 10.0], 50)[:, None]
    adata.obsm["spatial"] = np.hstack([adata.obsm["spatial"], z])
    path = tmp_path / "stack.h5ad"
    adata.write_h5ad(path)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-annotatability")
    expected = (
        "adata.obsm['spatial'] has 3 columns: the cells are placed by x and y (columns "
        "1-2) and column 3 (z?) is not used."
    )
    assert any(m.startswith(expected) for m in notifications.messages), notifications.messages
    assert viewer.layers["label"].data.shape == (100, 2)


def test_duplicate_cell_ids_are_made_unique_and_said(make_napari_viewer, notifications, tmp_path):
    adata = datasets.synthetic_tissue(n_cells=60, n_genes=10, n_classes=2, seed=0)
    adata.obs_names = ["c", "c", *adata.obs_names[2:]]
    path = tmp_path / "dup.h5ad"
    adata.write_h5ad(path)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-annotatability")
    opened = viewer.layers["label"].metadata["adata"]
    assert opened.obs_names.is_unique and list(opened.obs_names[:2]) == ["c", "c-1"]
    assert any(
        "the cell ids (obs_names) were not unique (1 id appears more than once, e.g. 'c' x2)" in m
        for m in notifications.messages
    ), notifications.messages


def test_a_store_in_two_coordinate_systems_opens_in_one_and_says_so(
    make_napari_viewer, notifications, dlpfc_store, tmp_path
):
    spatialdata = pytest.importorskip("spatialdata")
    from spatialdata.transformations import Scale, set_transformation

    sdata = spatialdata.read_zarr(dlpfc_store)
    for name in ("cell_boundaries", "cell_boundaries_image"):
        set_transformation(sdata[name], Scale([2.0, 2.0], axes=("x", "y")), "aligned")
    store = tmp_path / "aligned.zarr"
    sdata.write(store)
    viewer = make_napari_viewer()
    viewer.open(str(store), plugin="napari-annotatability")
    assert any(
        "placed in 2 coordinate systems ('global', 'aligned')" in m and "Shown in 'global'" in m
        for m in notifications.messages
    ), notifications.messages
    placed = np.asarray(viewer.layers["layer"].data)[:, ::-1]  # (x, y)
    np.testing.assert_allclose(placed, datasets.visium_dlpfc().obsm["spatial"], atol=1e-6)
