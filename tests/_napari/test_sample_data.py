import contextlib
import http.server
import importlib.util
import shutil
import socket
import threading
import time

import anndata as ad
import npe2
import numpy as np
import pytest
from conftest import shared_dataset_path

from napari_annotatability._napari.layers import cells_layer, point_size
from napari_annotatability._napari.sample_data import (
    SQUIDPY_DATASETS,
    SampleDownloadError,
    squidpy_cache_path,
    squidpy_dataset,
    squidpy_sample,
    unreachable,
)
from napari_annotatability.core.coordinates import tissue_coordinates
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.datasets import synthetic_tissue

pytestmark = pytest.mark.gui


def test_coordinates_are_row_column():
    adata = synthetic_tissue(n_cells=50, seed=0)
    coords, description = tissue_coordinates(adata)
    assert description == "obsm['spatial']"
    np.testing.assert_array_equal(coords[:, 0], adata.obsm["spatial"][:, 1])
    np.testing.assert_array_equal(coords[:, 1], adata.obsm["spatial"][:, 0])
    assert point_size(np.array([[0, 0], [0, 3.0], [4, 0]])) == 3.0
    del adata.obsm["spatial"]
    with pytest.raises(AnnotatabilityInputError, match=r"adata.obsm has no 'spatial' key"):
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
    assert layer.metadata["cells"] is None
    assert layer.metadata["coordinates"] == "obsm['spatial']"
    assert layer.metadata["library_id"] is None
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


# --- squidpy's datasets ------------------------------------------------------------------

PLUGIN = "napari-annotatability"
HAS_SQUIDPY = importlib.util.find_spec("squidpy") is not None
needs_squidpy = pytest.mark.skipif(
    not HAS_SQUIDPY,
    reason='squidpy is optional and not installed (pip install "napari-annotatability[squidpy]")',
)
#: A host that never resolves (RFC 6761): the download is impossible, instantly.
NOWHERE = "https://exampledata.invalid/squidpy/"


def test_squidpy_samples_are_in_file_open_sample():
    manifest = npe2.PluginManifest.from_distribution(PLUGIN)
    keys = {sample.key for sample in manifest.contributions.sample_data}
    assert {"squidpy_visium_hne", "squidpy_merfish", "squidpy_seqfish", "squidpy_four_i"} <= keys
    assert set(SQUIDPY_DATASETS) == {"visium_hne_adata", "merfish", "seqfish", "four_i"}


@pytest.mark.skipif(HAS_SQUIDPY, reason="checks the message shown when squidpy is missing")
def test_without_squidpy_the_sample_says_how_to_install_it(make_napari_viewer):
    viewer = make_napari_viewer()
    with pytest.raises(AnnotatabilityInputError) as info:
        viewer.open_sample(PLUGIN, "squidpy_merfish")
    assert 'pip install "napari-annotatability[squidpy]"' in str(info.value)
    assert "bundled samples" in str(info.value)
    assert len(viewer.layers) == 0


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(404)  # any answer means the server is there
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _local_server():
    """A real HTTP server on localhost, for a probe that must pass."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)


def test_unreachable_servers_are_reported_quickly(no_proxy):
    with _local_server() as url:
        assert unreachable(url, timeout=2) is None
    start = time.monotonic()
    reason = unreachable(NOWHERE, timeout=2)
    assert "exampledata.invalid" in reason
    assert time.monotonic() - start < 3
    # a server that accepts the connection and never answers: no hanging
    with socket.create_server(("127.0.0.1", 0)) as silent:
        start = time.monotonic()
        reason = unreachable(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=1)
        assert time.monotonic() - start < 2
    assert "127.0.0.1" in reason


def test_squidpy_cache_is_scanpys_dataset_folder():
    import scanpy

    expected = scanpy.settings.datasetdir / "anndata" / "merfish.h5ad"
    assert squidpy_cache_path("merfish") == expected


@needs_squidpy
def test_squidpy_would_download_into_the_reported_cache():
    downloader_module = pytest.importorskip("squidpy.datasets._downloader")
    downloader = downloader_module.get_downloader()  # squidpy's own (internal) resolver
    if not hasattr(downloader, "_resolve_path"):
        pytest.skip("this squidpy resolves its cache differently")
    for name in SQUIDPY_DATASETS:
        entry = downloader.registry[name].get_file_by_suffix(".h5ad")
        folder, filename = downloader._resolve_path(None, entry, "anndata")
        assert (folder / filename).resolve() == squidpy_cache_path(name).resolve()


@needs_squidpy
def test_a_cached_squidpy_dataset_opens_without_downloading(make_napari_viewer, tmp_path):
    # squidpy reads a file already at the path; the server is unreachable, so any
    # download attempt would fail
    merfish = tmp_path / "merfish.h5ad"
    shutil.copy(shared_dataset_path("merfish_lung_tessera"), merfish)
    visium = tmp_path / "visium_hne_adata.h5ad"
    shutil.copy(shared_dataset_path("visium_mousebrain_squidpy_fixture"), visium)
    viewer = make_napari_viewer()
    for layer_data in squidpy_sample("merfish", path=merfish, url=NOWHERE, timeout=1):
        viewer._add_layer_from_data(*layer_data)
    (cells,) = viewer.layers
    assert cells.metadata["label_key"] == "cell_lineage"  # no Cell_class: the reader's guess
    assert cells.metadata["adata"].n_obs == len(cells.data) == 3177

    # squidpy's MERFISH names its classes Cell_class and has several sections (Bregma)
    adata = ad.read_h5ad(merfish)
    adata.obs["Cell_class"] = adata.obs["cell_lineage"]
    adata.obs["Bregma"] = np.where(adata.obs["x"] < adata.obs["x"].median(), -9.0, 0.5)
    merfish.unlink()
    adata.write_h5ad(merfish)
    sections = squidpy_sample("merfish", path=merfish, url=NOWHERE, timeout=1)
    assert [kwargs["name"] for _, kwargs, _ in sections] == ["-9.0 Cell_class", "0.5 Cell_class"]
    assert sum(len(data) for data, _, _ in sections) == 3177
    assert all(kwargs["visible"] for _, kwargs, _ in sections)  # not overlaid: kept in place

    layers = squidpy_sample("visium_hne_adata", path=visium, url=NOWHERE, timeout=1)
    assert [kind for _, _, kind in layers] == ["image", "points"]
    assert layers[1][1]["metadata"]["label_key"] == "leiden"


@needs_squidpy
def test_offline_squidpy_sample_fails_fast_and_says_why(tmp_path, no_proxy):
    target = tmp_path / "not_here" / "seqfish.h5ad"
    start = time.monotonic()
    with pytest.raises(SampleDownloadError) as info:
        squidpy_dataset("seqfish", path=target, url=NOWHERE, timeout=2)
    assert time.monotonic() - start < 4
    message = str(info.value)
    assert "Downloading squidpy's 'seqfish' dataset failed" in message
    assert str(target) in message
    assert "work offline" in message
    assert not target.exists()


@needs_squidpy
def test_squidpys_own_download_failure_is_reported(tmp_path, no_proxy):
    real = "https://exampledata.scverse.org/squidpy/"
    reason = unreachable(real, timeout=3)
    if reason is None:
        pytest.skip("online: squidpy would really download the dataset")
    if "no answer" in reason:
        pytest.skip("the network hangs instead of failing; squidpy's own timeout would apply")
    # a local server lets our probe pass: then squidpy's own download fails
    expected = pytest.raises(SampleDownloadError, match=r"dataset failed .*work offline")
    with _local_server() as probe, expected:
        squidpy_dataset("seqfish", path=tmp_path / "seqfish.h5ad", url=probe, timeout=2)
