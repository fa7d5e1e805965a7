import numpy as np
import pytest

from napari_annotatability._napari.layers import cells_layer, point_size, tissue_coordinates
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.datasets import synthetic_tissue

pytestmark = pytest.mark.gui


def test_coordinates_are_row_column():
    adata = synthetic_tissue(n_cells=50, seed=0)
    coords = tissue_coordinates(adata)
    np.testing.assert_array_equal(coords[:, 0], adata.obsm["spatial"][:, 1])
    np.testing.assert_array_equal(coords[:, 1], adata.obsm["spatial"][:, 0])
    assert point_size(np.array([[0, 0], [0, 3.0], [4, 0]])) == 3.0
    del adata.obsm["spatial"]
    with pytest.raises(AnnotatabilityInputError, match=r"obsm\['spatial'\] is missing"):
        cells_layer(adata, "label")


def test_open_bundled_sample_in_a_real_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-annotatability", "visium_dlpfc")
    (layer,) = layers
    assert layer.data.shape == (3636, 2)
    assert layer.metadata["label_key"] == "layer"
    assert layer.metadata["adata"].n_obs == 3636
    assert list(layer.features["layer"].cat.categories) == [
        "Layer_3",
        "Layer_4",
        "Layer_5",
        "Layer_6",
        "WM",
    ]
    assert layer.features["cell_id"].iloc[0] == "AAACAAGTATCTCCCA-1"
    # categorical colouring: one colour per class
    colours = {tuple(c) for c in np.round(layer.face_color, 3)}
    assert len(colours) == 5


def test_screenshot_shows_the_tissue(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-annotatability", "synthetic_tissue")
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot.shape[2] == 4
    rgb = shot[..., :3].reshape(-1, 3)
    background = np.median(rgb, axis=0)
    painted = np.any(np.abs(rgb.astype(int) - background) > 30, axis=1).mean()
    assert painted > 0.05  # the points cover the tissue of the canvas, not a blank frame
    assert len(np.unique(rgb // 32, axis=0)) >= 5  # several class colours
