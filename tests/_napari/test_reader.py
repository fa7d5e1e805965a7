"""The AnnData reader in a real napari viewer, on the real datasets of ../shared/data."""

import logging
import warnings

import anndata as ad
import h5py
import numpy as np
import pytest
import zarr
from conftest import DATA_DIR, shared_dataset_path

from napari_annotatability._napari.reader import (
    anndata_layers,
    guess_label_key,
    napari_get_reader,
    read_layers,
)
from napari_annotatability.core.coordinates import tissue_coordinates
from napari_annotatability.core.errors import AnnotatabilityInputError

pytestmark = pytest.mark.gui

PLUGIN = "napari-annotatability"
FIXTURE = "visium_mousebrain_squidpy_fixture"
LIBRARY = "V1_Adult_Mouse_Brain"
SHARED = (
    "cycif_scimap",
    "merfish_lung_tessera",
    "osmfish_sscortex",
    "st_mob_stdeconvolve",
    "visium_dlpfc_steam",
    FIXTURE,
)


def _points(layers):
    return [layer for layer in layers if layer._type_string == "points"]


def _images(layers):
    return [layer for layer in layers if layer._type_string == "image"]


def _colour_of_class(layer, key):
    """The RGBA colour of each class shown in a Points layer."""
    labels = layer.features[key].astype(str).to_numpy()
    return {label: tuple(np.round(layer.face_color[labels == label][0], 4)) for label in labels}


def _check_cells_layer(layer, adata, label_key, cells=None, offset=(0.0, 0.0)):
    """The shared contract of a cells Points layer (see layers.cells_layer)."""
    meta = layer.metadata
    assert set(meta) >= {"adata", "label_key", "cells", "coordinates", "library_id"}
    assert meta["adata"] is adata
    assert meta["label_key"] == label_key
    positions = np.arange(adata.n_obs) if meta["cells"] is None else meta["cells"]
    if cells is not None:
        np.testing.assert_array_equal(positions, cells)
    assert len(layer.data) == len(positions) == len(layer.features)
    # row i of the layer is obs row cells[i]: same id, same values, same position
    assert list(layer.features["cell_id"]) == list(adata.obs_names[positions])
    coords, _ = tissue_coordinates(adata)
    np.testing.assert_allclose(layer.data, coords[positions] + np.asarray(offset))
    for column in adata.obs.columns:
        assert column in layer.features.columns
    if label_key is not None:
        np.testing.assert_array_equal(
            layer.features[label_key].astype(str).to_numpy(),
            adata.obs[label_key].astype(str).to_numpy()[positions],
        )


def test_the_list_covers_every_shared_dataset():
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared data folder {DATA_DIR} not found")
    found = {p.name for p in DATA_DIR.iterdir() if (p / f"{p.name}.h5ad").is_file()}
    assert found <= set(SHARED), f"add {sorted(found - set(SHARED))} to SHARED"


@pytest.mark.parametrize("name", SHARED)
def test_every_shared_dataset_opens_through_the_reader(make_napari_viewer, name):
    path = shared_dataset_path(name)
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin=PLUGIN)
    assert list(viewer.layers) == layers
    (cells,) = _points(layers)
    adata = cells.metadata["adata"]
    label_key = adata.uns["label_key"]
    assert adata.n_obs == ad.read_h5ad(path).n_obs
    _check_cells_layer(cells, adata, label_key)
    assert cells.metadata["coordinates"] == "obsm['spatial']"
    assert cells.name == label_key
    # categorical colouring: one colour per class, and each class keeps its colour
    n_classes = adata.obs[label_key].nunique()
    assert len(set(_colour_of_class(cells, label_key).values())) == n_classes
    assert cells.size.min() > 0
    images = _images(layers)
    if "spatial" in adata.uns:
        (image,) = images
        assert layers.index(image) < layers.index(cells)  # the image lies under the cells
        assert image.metadata["adata"] is adata
        assert cells.metadata["library_id"] == image.metadata["library_id"] == LIBRARY
    else:
        assert images == []
        assert cells.metadata["library_id"] is None


def test_visium_spots_land_on_their_image_pixels(make_napari_viewer):
    path = shared_dataset_path(FIXTURE)
    viewer = make_napari_viewer()
    image, cells = viewer.open(str(path), plugin=PLUGIN)
    adata = cells.metadata["adata"]
    entry = adata.uns["spatial"][LIBRARY]
    scalef = entry["scalefactors"]["tissue_lowres_scalef"]
    assert image.name == f"{LIBRARY} lowres image"
    assert image.rgb
    np.testing.assert_allclose(image.scale, [1 / scalef, 1 / scalef])
    np.testing.assert_array_equal(image.data, entry["images"]["lowres"])
    # spot size from the scale factors, in full-resolution pixels like the coordinates
    np.testing.assert_allclose(cells.size, entry["scalefactors"]["spot_diameter_fullres"])

    xy = adata.obsm["spatial"]
    pixels = image.data.astype(int)
    saturation = pixels.max(axis=2) - pixels.min(axis=2)  # grey background ~4, tissue > 25
    assert (saturation < 20).mean() > 0.2  # the crop does show background
    for i in range(adata.n_obs):
        world = cells.data_to_world(cells.data[i])
        row, col = image.world_to_data(world)
        # obsm x, y in full-res pixels x scalef = (column, row) of the lowres image
        np.testing.assert_allclose([row, col], [xy[i, 1] * scalef, xy[i, 0] * scalef])
        assert saturation[round(row), round(col)] > 20, f"spot {i} is not on tissue"


def test_obs_column_coordinates_in_a_viewer(make_napari_viewer, load_shared, tmp_path):
    adata = load_shared("merfish_lung_tessera")  # x, y in obs as well as in obsm
    x, y = adata.obs["x"].to_numpy(), adata.obs["y"].to_numpy()
    del adata.obsm["spatial"]
    adata.write_h5ad(tmp_path / "obs_xy.h5ad")
    dlpfc = load_shared("visium_dlpfc_steam")  # array_row, array_col in obs
    del dlpfc.obsm["spatial"]
    dlpfc.write_h5ad(tmp_path / "array.h5ad")

    viewer = make_napari_viewer()
    (cells,) = viewer.open(str(tmp_path / "obs_xy.h5ad"), plugin=PLUGIN)
    assert cells.metadata["coordinates"] == "obs['x'], obs['y']"
    np.testing.assert_array_equal(cells.data, np.column_stack([y, x]))
    (spots,) = viewer.open(str(tmp_path / "array.h5ad"), plugin=PLUGIN)
    assert spots.metadata["coordinates"] == "obs['array_row'], obs['array_col']"
    np.testing.assert_array_equal(
        spots.data, dlpfc.obs[["array_row", "array_col"]].to_numpy(dtype=float)
    )
    # neighbouring Visium spots are 1 array row apart: the size follows the spacing
    assert 0.9 < spots.size[0] < 2.5


@pytest.mark.parametrize(
    ("columns", "swapped"),
    [
        (("x", "y"), True),
        (("X", "Y"), True),
        (("x_centroid", "y_centroid"), True),
        (("centroid_x", "centroid_y"), True),
        (("imagecol", "imagerow"), True),
        (("array_row", "array_col"), False),
        (("row", "col"), False),
    ],
)
def test_obs_column_pairs(load_shared, columns, swapped):
    adata = load_shared("st_mob_stdeconvolve")
    first, second = adata.obsm.pop("spatial").T
    adata.obs = adata.obs.drop(columns=["x", "y"])
    adata.obs[columns[0]] = first
    adata.obs[columns[1]] = second
    coords, description = tissue_coordinates(adata)
    assert description == f"obs[{columns[0]!r}], obs[{columns[1]!r}]"
    expected = np.column_stack([second, first] if swapped else [first, second])
    np.testing.assert_array_equal(coords, expected)


def _two_libraries(load_shared, column="library_id"):
    entry = load_shared(FIXTURE).uns["spatial"][LIBRARY]
    parts = []
    for lib in ("A", "B"):
        part = load_shared(FIXTURE)
        part.uns["spatial"] = {lib: entry}
        parts.append(part)
    both = ad.concat(parts, label=column, keys=["A", "B"], uns_merge="unique", index_unique="-")
    both.uns["label_key"] = "leiden"
    return both


@pytest.mark.parametrize("column", ["library_id", "slide_name"])
def test_two_libraries_give_one_group_of_layers_each(
    make_napari_viewer, load_shared, tmp_path, column
):
    both = _two_libraries(load_shared, column)
    assert sorted(both.uns["spatial"]) == ["A", "B"]
    both.write_h5ad(tmp_path / "two.h5ad")
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "two.h5ad"), plugin=PLUGIN)
    assert [layer.name for layer in layers] == [
        "A lowres image",
        "B lowres image",
        "A leiden",
        "B leiden",
    ]
    image_a, image_b, cells_a, cells_b = layers
    adata = cells_a.metadata["adata"]
    assert image_a.metadata["library_id"] == cells_a.metadata["library_id"] == "A"
    assert image_b.metadata["library_id"] == cells_b.metadata["library_id"] == "B"
    # two sections in one pixel frame: laid side by side, each on its image, all visible
    shift = np.asarray(image_b.translate)
    assert shift[1] > 0 and np.allclose(image_a.translate, 0)
    _check_cells_layer(cells_a, adata, "leiden", cells=np.arange(49))
    _check_cells_layer(cells_b, adata, "leiden", cells=np.arange(49, 98), offset=shift)
    assert set(cells_b.features[column]) == {"B"}
    assert image_a.extent.world[1, -1] < image_b.extent.world[0, -1]  # no overlap
    assert all(layer.visible for layer in layers)
    # a class has the same colour in both libraries
    colours_a = _colour_of_class(cells_a, "leiden")
    colours_b = _colour_of_class(cells_b, "leiden")
    assert all(colours_a[c] == colours_b[c] for c in colours_a)
    np.testing.assert_allclose(cells_a.size, 89.44476, rtol=1e-5)


def test_libraries_without_a_cell_column_give_all_cells_and_every_image(
    make_napari_viewer, load_shared, tmp_path
):
    both = _two_libraries(load_shared)
    both.obs = both.obs.drop(columns="library_id")
    both.write_h5ad(tmp_path / "unmapped.h5ad")
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "unmapped.h5ad"), plugin=PLUGIN)
    assert [layer.name for layer in layers] == ["A lowres image", "B lowres image", "leiden"]
    _check_cells_layer(layers[2], layers[2].metadata["adata"], "leiden")
    assert layers[2].metadata["cells"] is None
    assert layers[2].metadata["library_id"] is None


def test_sections_without_images_get_a_layer_each(make_napari_viewer, load_shared):
    adata = load_shared("osmfish_sscortex")
    layers = anndata_layers(adata, "cell_type", library_key="region")
    regions = list(adata.obs["region"].cat.categories)
    assert [kwargs["name"] for _, kwargs, _ in layers] == [f"{r} cell_type" for r in regions]
    viewer = make_napari_viewer()
    for layer_data in layers:
        viewer._add_layer_from_data(*layer_data)
    seen = []
    for layer, region in zip(viewer.layers, regions, strict=True):
        cells = np.flatnonzero(adata.obs["region"] == region)
        _check_cells_layer(layer, adata, "cell_type", cells=cells)
        assert layer.metadata["library_id"] == region
        seen.extend(cells)
    assert sorted(seen) == list(range(adata.n_obs))  # every cell once
    # regions of one section keep their places (checked above: no offset), all shown
    assert all(layer.visible for layer in viewer.layers)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_round_trip(make_napari_viewer, load_shared, tmp_path, zarr_format):
    adata = load_shared(FIXTURE)
    store = tmp_path / "fixture.zarr"
    with warnings.catch_warnings(), ad.settings.override(zarr_write_format=zarr_format):
        warnings.simplefilter("ignore", UserWarning)  # anndata's notes on zarr defaults
        adata.write_zarr(store)
    assert napari_get_reader(str(store)) is not None
    assert napari_get_reader(str(store) + "/") is not None
    viewer = make_napari_viewer()
    image, cells = viewer.open(str(store), plugin=PLUGIN)
    from_zarr = cells.metadata["adata"]
    np.testing.assert_array_equal(image.data, adata.uns["spatial"][LIBRARY]["images"]["lowres"])
    np.testing.assert_array_equal(cells.data, adata.obsm["spatial"][:, ::-1])
    assert list(cells.features["cell_id"]) == list(adata.obs_names)
    assert (from_zarr.X != adata.X).nnz == 0
    _check_cells_layer(cells, from_zarr, "leiden")


def test_the_reader_declines_what_is_not_anndata(tmp_path):
    group = zarr.open_group(tmp_path / "image.zarr", mode="w")
    group.create_array("0", shape=(4, 4), dtype="uint8")
    assert napari_get_reader(str(tmp_path / "image.zarr")) is None
    assert napari_get_reader(str(tmp_path / "cells.csv")) is None
    assert napari_get_reader([str(tmp_path / "a.h5ad"), str(tmp_path / "b.tif")]) is None


def test_label_key_is_guessed(load_shared, make_napari_viewer, tmp_path, caplog):
    adata = load_shared("osmfish_sscortex")
    adata.uns["label_key"] = "no_such_column"
    with caplog.at_level(logging.WARNING):
        assert guess_label_key(adata) == "cell_type"  # a preferred name beats 'region'
    assert "no_such_column" in caplog.text
    del adata.uns["label_key"]
    adata.obs = adata.obs.drop(columns="cell_type")
    assert guess_label_key(adata) == "region"
    # no categorical column at all: cells in one plain colour
    adata.obs = adata.obs.drop(columns=[c for c in adata.obs if adata.obs[c].dtype == "category"])
    assert guess_label_key(adata) is None
    adata.write_h5ad(tmp_path / "unlabelled.h5ad")
    viewer = make_napari_viewer()
    (cells,) = viewer.open(str(tmp_path / "unlabelled.h5ad"), plugin=PLUGIN)
    assert cells.metadata["label_key"] is None
    assert cells.name == "cells"
    assert len(np.unique(cells.face_color, axis=0)) == 1
    _check_cells_layer(cells, cells.metadata["adata"], None)


def test_images_prefer_hires_and_skip_odd_entries(
    load_shared, make_napari_viewer, tmp_path, caplog
):
    adata = load_shared(FIXTURE)
    entry = adata.uns["spatial"][LIBRARY]
    entry["images"]["hires"] = np.repeat(np.repeat(entry["images"]["lowres"], 3, 0), 3, 1)
    entry["scalefactors"]["tissue_hires_scalef"] = 3 * entry["scalefactors"]["tissue_lowres_scalef"]
    adata.write_h5ad(tmp_path / "hires.h5ad")
    viewer = make_napari_viewer()
    image, cells = viewer.open(str(tmp_path / "hires.h5ad"), plugin=PLUGIN)
    assert image.name == f"{LIBRARY} hires image"
    np.testing.assert_allclose(image.scale, [1 / entry["scalefactors"]["tissue_hires_scalef"]] * 2)

    del entry["images"]["hires"]
    del entry["scalefactors"]
    adata.write_h5ad(tmp_path / "no_scalefactors.h5ad")
    with caplog.at_level(logging.WARNING):
        (cells,) = viewer.open(str(tmp_path / "no_scalefactors.h5ad"), plugin=PLUGIN)
    assert "has no 'scalefactors'" in caplog.text
    _check_cells_layer(cells, cells.metadata["adata"], "leiden")
    # no spot diameter: the size follows the spacing of the spots (Visium: 100 um ~ 138 px)
    assert 100 < cells.size[0] < 200

    adata.uns["spatial"][LIBRARY] = {"images": {}, "metadata": {}}
    adata.write_h5ad(tmp_path / "no_images.h5ad")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        (cells,) = viewer.open(str(tmp_path / "no_images.h5ad"), plugin=PLUGIN)
    assert "has no 'images'" in caplog.text


def _open_fails(viewer, path, match):
    with pytest.raises(AnnotatabilityInputError, match=match):
        viewer.open(str(path), plugin=PLUGIN)
    assert len(viewer.layers) == 0


def test_bad_inputs_give_clear_errors(make_napari_viewer, load_shared, tmp_path):
    viewer = make_napari_viewer()
    adata = load_shared(FIXTURE)
    no_coords = adata.copy()
    del no_coords.obsm["spatial"]
    no_coords.write_h5ad(tmp_path / "no_coords.h5ad")
    _open_fails(viewer, tmp_path / "no_coords.h5ad", r"No tissue coordinates.*'X_pca', 'X_umap'")
    _open_fails(viewer, tmp_path / "no_coords.h5ad", r"obs columns: \['in_tissue', 'leiden'\]")
    _open_fails(viewer, tmp_path / "no_coords.h5ad", r"Add the cell positions as adata.obsm")

    adata.obsm["spatial"] = adata.obsm["spatial"].astype(float)
    adata.obsm["spatial"][[3, 7, 11], 1] = np.nan
    adata.obsm["spatial"][20, 0] = np.inf
    adata.write_h5ad(tmp_path / "nan.h5ad")
    _open_fails(viewer, tmp_path / "nan.h5ad", r"NaN or infinite for 4 of 49 cells")

    (tmp_path / "text.h5ad").write_text("cell,x,y\n")
    _open_fails(viewer, tmp_path / "text.h5ad", r"Could not read .*text\.h5ad.* as AnnData")
    with h5py.File(tmp_path / "plain.h5ad", "w") as f:
        f["numbers"] = np.arange(3)
    _open_fails(viewer, tmp_path / "plain.h5ad", r"Could not read .*plain\.h5ad.* as AnnData")
    with pytest.raises(AnnotatabilityInputError, match=r"missing\.h5ad' does not exist"):
        read_layers(str(tmp_path / "missing.h5ad"))  # (napari checks this itself first)

    adata = load_shared(FIXTURE)
    del adata.obsm["spatial"]
    adata.obs["x"] = "a"  # a text column is not a coordinate
    adata.obs["y"] = 1.0
    with pytest.raises(AnnotatabilityInputError, match="No tissue coordinates"):
        tissue_coordinates(adata)
