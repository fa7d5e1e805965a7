"""SpatialData stores: cells placed by their elements, clear errors, atomic write-back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

spatialdata = pytest.importorskip("spatialdata")

import napari_annotatability as nat  # noqa: E402
from napari_annotatability import datasets  # noqa: E402
from napari_annotatability.core.errors import AnnotatabilityInputError  # noqa: E402
from napari_annotatability.core.spatialdata_read import (  # noqa: E402
    is_spatialdata_store,
    spatial_cells,
)


def _blobs_with_labels():
    from spatialdata.datasets import blobs

    sdata = blobs()
    table = sdata.tables["table"]
    table.obs["cell_type"] = pd.Categorical(np.where(np.arange(table.n_obs) % 2, "a", "b"))
    return sdata


def _elements(path):
    sdata = spatialdata.read_zarr(path)
    return {name: element for _, name, element in sdata.gen_elements()}


def test_polygons_are_placed_at_their_centroids_over_the_image(dlpfc_store):
    original = datasets.visium_dlpfc()
    assert is_spatialdata_store(dlpfc_store)
    cells = nat.spatialdata_cells(dlpfc_store)
    np.testing.assert_allclose(cells.adata.obsm["spatial"], original.obsm["spatial"], atol=1e-6)
    assert list(cells.adata.obs_names) == list(original.obs_names)
    assert cells.sections == {"cell_boundaries": "global"}
    (image,) = cells.images
    assert image.rgb and len(image.levels) == 2  # multiscale kept
    # the image's transformation puts its pixels under the cells: corners cover every cell
    height, width = image.levels[0].shape[-2:]
    corners = np.array([[0, 0, 1], [height, width, 1]]) @ image.affine.T
    rows_cols = original.obsm["spatial"][:, ::-1]
    assert (rows_cols >= corners[0, :2]).all() and (rows_cols <= corners[1, :2]).all()
    assert image.affine[0, 0] != 1  # a real scale, honoured


def test_label_masks_and_circles_give_centres_and_sizes():
    sdata = _blobs_with_labels()
    cells = spatial_cells(sdata)  # the table annotates the label mask
    expected = spatialdata.get_centroids(sdata["blobs_labels"]).compute()
    ids = cells.adata.obs["instance_id"].to_numpy()
    np.testing.assert_allclose(cells.adata.obsm["spatial"], expected.loc[ids, ["x", "y"]])
    assert cells.source.path is None and cells.sizes == {"blobs_labels": None}


def test_circles_keep_their_diameter(two_section_store):
    cells = nat.spatialdata_cells(two_section_store)
    # the circles' radius is half the spot spacing (2 on this grid): diameter 2
    assert list(cells.sizes.values()) == [pytest.approx(2.0), pytest.approx(2.0)]


def test_sections_lie_side_by_side_each_on_its_image(two_section_store):
    cells = nat.spatialdata_cells(two_section_store)
    adata = cells.adata
    assert set(cells.sections) == {"A_cells", "B_cells"}
    assert adata.obs["section"].value_counts().to_dict() == {"B_cells": 2033, "A_cells": 1603}
    boxes = []
    for section in cells.sections:
        xy = adata.obsm["spatial"][(adata.obs["section"] == section).to_numpy()]
        boxes.append((xy.min(axis=0), xy.max(axis=0)))
    (low_a, high_a), (low_b, high_b) = boxes
    assert high_a[0] < low_b[0] or high_b[0] < low_a[0]  # no overlap in x
    for image in cells.images:  # each image moved with its section
        assert np.allclose(image.offset, cells.offsets[image.name.removesuffix("_image")])


def test_several_tables_or_coordinate_systems_are_a_choice_not_a_guess(dlpfc_store):
    from spatialdata.transformations import Scale, set_transformation

    sdata = spatialdata.read_zarr(dlpfc_store)
    sdata.tables["second"] = sdata.tables["table"].copy()
    with pytest.raises(AnnotatabilityInputError, match=r"2 tables \('table', 'second'\)"):
        spatial_cells(sdata)
    assert spatial_cells(sdata, table="second").adata.n_obs == 3636
    del sdata.tables["second"]
    set_transformation(sdata["cell_boundaries"], Scale([2.0, 2.0], axes=("x", "y")), "aligned")
    set_transformation(
        sdata["cell_boundaries_image"], Scale([2.0, 2.0], axes=("x", "y")), "aligned"
    )
    with pytest.raises(
        AnnotatabilityInputError, match=r"2 coordinate systems.*--coordinate-system"
    ):
        spatial_cells(sdata)
    aligned = spatial_cells(sdata, coordinate_system="aligned")
    np.testing.assert_allclose(
        aligned.adata.obsm["spatial"],
        2 * spatial_cells(sdata, coordinate_system="global").adata.obsm["spatial"],
    )


def test_bad_stores_get_clear_errors(dlpfc_store, tmp_path):
    from spatialdata.models import TableModel

    sdata = spatialdata.read_zarr(dlpfc_store)
    table = sdata.tables["table"]
    with pytest.raises(AnnotatabilityInputError, match="has no table"):
        spatial_cells(spatialdata.SpatialData(shapes={"c": sdata["cell_boundaries"]}))
    plain = table.copy()
    del plain.uns["spatialdata_attrs"]
    with pytest.raises(AnnotatabilityInputError, match="annotates no element"):
        spatial_cells(spatialdata.SpatialData(tables={"t": plain}))
    wrong_ids = table.copy()
    wrong_ids.obs["instance_id"] = wrong_ids.obs["instance_id"] + 10**6
    sdata.tables["table"] = wrong_ids
    with pytest.raises(AnnotatabilityInputError, match="instance_key does not match"):
        spatial_cells(sdata)
    moved = plain.copy()
    moved.obs["region"] = pd.Categorical(["nowhere"] * moved.n_obs)
    moved = TableModel.parse(
        moved, region="nowhere", region_key="region", instance_key="instance_id"
    )
    with pytest.warns(UserWarning, match="not present in the SpatialData object"):
        lost = spatialdata.SpatialData(shapes={"c": sdata["cell_boundaries"]}, tables={"t": moved})
    with pytest.raises(AnnotatabilityInputError, match=r"annotates \['nowhere'\], which the store"):
        spatial_cells(lost)
    with pytest.raises(AnnotatabilityInputError, match="not a SpatialData store"):
        nat.spatialdata_cells(tmp_path)
    with pytest.raises(AnnotatabilityInputError, match="does not exist"):
        nat.spatialdata_cells(tmp_path / "missing.zarr")


def test_write_back_replaces_only_the_table(dlpfc_store):
    before = _elements(dlpfc_store)
    cells = nat.spatialdata_cells(dlpfc_store)
    nat.annotate(cells.adata, "layer", epochs=3, suggest_epochs=3)
    nat.curate(cells.adata, "layer").relabel([0, 1], "Layer1")
    nat.write_spatialdata(cells)
    after = _elements(dlpfc_store)
    assert set(after) == set(before)
    for name, element in before.items():
        if name == "table":
            continue
        if hasattr(element, "geometry"):
            assert element.geometry.equals(after[name].geometry)
        else:
            np.testing.assert_array_equal(
                np.asarray(element["scale0"]["image"]), np.asarray(after[name]["scale0"]["image"])
            )
    table, old = after["table"], before["table"]
    np.testing.assert_array_equal(np.asarray(table.X), np.asarray(old.X))
    assert table.uns["spatialdata_attrs"] == old.uns["spatialdata_attrs"]
    assert "spatial" not in table.obsm  # positions made on reading are not written
    np.testing.assert_allclose(table.obs["layer_conf"], cells.adata.obs["layer_conf"])
    assert list(table.obs["layer_curated"][:2]) == ["Layer1", "Layer1"]
    assert "layer_annotatability" in table.uns and "annotatability_edits" in table.uns
    leftovers = [p.name for p in (dlpfc_store / "tables").iterdir()]
    assert leftovers == ["table"] or sorted(leftovers) == ["table", "zarr.json"]
    # the store stays readable with its new columns, and can be written again
    again = nat.spatialdata_cells(dlpfc_store)
    assert "layer_flag" in again.adata.obs
    nat.curate(cells.adata, "layer").relabel([2], "Layer1")
    nat.write_spatialdata(cells)
    assert (
        spatialdata.read_zarr(dlpfc_store).tables["table"].obs["layer_curated"].iloc[2] == "Layer1"
    )


def test_write_back_of_some_regions_leaves_the_other_rows_empty(two_section_store):
    sdata = spatialdata.read_zarr(two_section_store)
    cells = spatial_cells(sdata, regions=["A_cells"])
    cells.adata.obs["score"] = 1.0
    cells.adata.obs["note"] = "seen"
    cells.adata.obs["kept"] = True
    nat.write_spatialdata(cells)
    table = spatialdata.read_zarr(two_section_store).tables["table"]
    in_a = (table.obs["region"] == "A_cells").to_numpy()
    assert (table.obs["score"][in_a] == 1.0).all() and table.obs["score"][~in_a].isna().all()
    assert (table.obs["note"][in_a] == "seen").all() and table.obs["note"][~in_a].isna().all()
    assert table.obs["kept"][in_a].all() and not table.obs["kept"][~in_a].any()


def test_write_back_refuses_read_only_and_changed_stores(dlpfc_store):
    cells = nat.spatialdata_cells(dlpfc_store, read_only=True)
    with pytest.raises(AnnotatabilityInputError, match="read-only"):
        nat.write_spatialdata(cells)
    cells = nat.spatialdata_cells(dlpfc_store)
    other = nat.spatialdata_cells(dlpfc_store)
    other.adata.obs["note"] = "someone else"
    nat.write_spatialdata(other)  # the table changes on disk after `cells` was read
    cells.adata.obs["note"] = "mine"
    with pytest.raises(AnnotatabilityInputError, match="changed on disk since it was read"):
        nat.write_spatialdata(cells)
    assert set(spatialdata.read_zarr(dlpfc_store).tables["table"].obs["note"]) == {"someone else"}
    in_memory = spatial_cells(_blobs_with_labels())
    with pytest.raises(AnnotatabilityInputError, match="not saved to a store"):
        nat.write_spatialdata(in_memory)


def test_an_anndata_never_replaces_a_store(dlpfc_store):
    from napari_annotatability.core.anndata_io import save_curated

    cells = nat.spatialdata_cells(dlpfc_store)
    with pytest.raises(AnnotatabilityInputError, match="is a SpatialData store"):
        save_curated(cells.adata, dlpfc_store, overwrite=True)
    assert is_spatialdata_store(dlpfc_store) and (dlpfc_store / "images").is_dir()


def test_a_table_of_points_places_each_point():
    from anndata import AnnData
    from spatialdata.models import TableModel

    sdata = _blobs_with_labels()
    points = sdata["blobs_points"].compute()
    obs = pd.DataFrame(
        {
            "region": pd.Categorical(["blobs_points"] * len(points)),
            "instance_id": points.index.to_numpy(),
            "cell_type": pd.Categorical(points["genes"].astype(str)),
        }
    )
    obs.index = obs.index.astype(str)
    table = TableModel.parse(
        AnnData(np.ones((len(points), 2), dtype=np.float32), obs=obs),
        region="blobs_points",
        region_key="region",
        instance_key="instance_id",
    )
    del sdata.tables["table"]
    sdata.tables["points_table"] = table
    cells = spatial_cells(sdata)
    np.testing.assert_allclose(cells.adata.obsm["spatial"], points[["x", "y"]].to_numpy())


@pytest.mark.parametrize(
    ("name", "shapes"),
    [("merfish_lung_tessera", "polygons"), ("visium_mousebrain_squidpy_fixture", "circles")],
)
def test_shared_datasets_keep_their_cells_through_a_store(load_shared, tmp_path, name, shapes):
    adata = load_shared(name)
    store = datasets.write_spatialdata_store(adata, tmp_path / f"{name}.zarr", shapes=shapes)
    cells = nat.spatialdata_cells(store)
    np.testing.assert_allclose(cells.adata.obsm["spatial"], adata.obsm["spatial"][:, :2])
    key = adata.uns["label_key"]
    assert list(cells.adata.obs[key].astype(str)) == list(adata.obs[key].astype(str))
    assert cells.adata.n_vars == adata.n_vars and len(cells.images) == 1
