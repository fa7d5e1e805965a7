"""File > Open Sample: the bundled samples (offline) and squidpy's datasets (downloaded).

The bundled Visium DLPFC section and the synthetic tissue need no network. squidpy's
datasets (the spatial data of the Annotatability paper) are downloaded by squidpy on
first use into its cache; squidpy is optional (``pip install
"napari-annotatability[squidpy]"``) and imported only when such a sample is opened.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from anndata import AnnData

from napari_annotatability import datasets
from napari_annotatability._napari.layers import cells_layer
from napari_annotatability._napari.reader import anndata_layers, guess_label_key
from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)


def visium_dlpfc_sample() -> list[tuple]:
    """The bundled Visium DLPFC section, spots coloured by their manual layer label."""
    adata = datasets.visium_dlpfc()
    return [cells_layer(adata, datasets.SAMPLE_LABEL_KEY, name="DLPFC layer")]


def synthetic_tissue_sample() -> list[tuple]:
    """A synthetic layered tissue with 10% known label errors, coloured by label."""
    adata = datasets.synthetic_tissue()
    return [cells_layer(adata, "label", name="synthetic label")]


# --- squidpy's datasets (the spatial data of the Annotatability paper) ------------------

#: squidpy dataset -> (annotation column, obs column of the sections / samples).
SQUIDPY_DATASETS: dict[str, tuple[str, str | None]] = {
    "visium_hne_adata": ("cluster", None),  # 10x Visium mouse brain, H&E image
    "merfish": ("Cell_class", "Bregma"),  # Moffitt et al. 2018, several sections
    "seqfish": ("celltype_mapped_refined", None),  # Lohoff et al. 2022, mouse embryo
    "four_i": ("cluster", None),  # Gut et al. 2018, 4i imaging
}

#: Where squidpy downloads from (used when squidpy's own registry does not say).
SQUIDPY_DATA_URL = "https://exampledata.scverse.org/squidpy/"

#: Seconds to wait for squidpy's download server before giving up (no hanging offline).
PROBE_TIMEOUT = 5.0

_OFFLINE_HINT = (
    "The bundled samples (File > Open Sample > Visium DLPFC, Synthetic tissue) work offline."
)


class SampleDownloadError(ConnectionError):
    """A sample dataset could not be downloaded (offline, or the server failed)."""


def squidpy_cache_path(name: str) -> Path:
    """Where squidpy keeps dataset ``name``: ``scanpy.settings.datasetdir/anndata``.

    That is squidpy's own default cache (``./data/anndata`` unless scanpy's
    ``settings.datasetdir`` is changed).
    """
    import scanpy

    return Path(scanpy.settings.datasetdir) / "anndata" / f"{name}.h5ad"


def _squidpy_url() -> str:
    try:
        from squidpy.datasets._registry import get_registry

        return get_registry().s3_base_url or SQUIDPY_DATA_URL
    except Exception:  # an older or newer squidpy without that registry
        return SQUIDPY_DATA_URL


def unreachable(url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why the server of ``url`` does not answer, or ``None`` when it does.

    Sends one HTTP ``HEAD`` request (through the configured proxy, if any) in a daemon
    thread and waits at most ``timeout`` seconds, name lookup included, so a machine
    without network, or one whose network swallows requests, gets an answer quickly.
    Any HTTP answer, even an error status, counts as reachable.
    """
    host = urlparse(url).hostname or url
    outcome: dict[str, object] = {}

    def ask() -> None:
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                pass
        except urllib.error.HTTPError:
            pass  # the server answered
        except (OSError, ValueError) as err:  # URLError, timeouts, TLS and socket errors
            outcome["error"] = getattr(err, "reason", err)

    thread = threading.Thread(target=ask, name="annotatability-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return f"no answer from {host} within {timeout:g} s"
    if "error" in outcome:
        return f"cannot reach {host} ({outcome['error']})"
    return None


def squidpy_dataset(
    name: str,
    *,
    path: str | os.PathLike | None = None,
    url: str | None = None,
    timeout: float = PROBE_TIMEOUT,
) -> AnnData:
    """One of squidpy's datasets, downloaded by squidpy on first use.

    Parameters
    ----------
    name
        A squidpy dataset function (``visium_hne_adata``, ``merfish``, ``seqfish``,
        ``four_i``, ...).
    path
        The ``.h5ad`` file to use or download into (default: squidpy's cache,
        :func:`squidpy_cache_path`). An existing file is read, never downloaded again.
    url
        Server checked before downloading (default: squidpy's).
    timeout
        Seconds to wait for that server before giving up.

    Returns
    -------
    The AnnData.

    Raises
    ------
    AnnotatabilityInputError
        squidpy is not installed, ``name`` is not a squidpy dataset, or the cached
        file cannot be read.
    SampleDownloadError
        The download failed (offline, server unreachable or failing).
    """
    try:
        import squidpy.datasets as sq_datasets
    except ImportError as err:
        raise AnnotatabilityInputError(
            f"The {name!r} sample is downloaded by squidpy, which is not installed ({err}). "
            'Install it with: pip install "napari-annotatability[squidpy]". ' + _OFFLINE_HINT
        ) from err
    loader = getattr(sq_datasets, name, None)
    if not callable(loader):
        raise AnnotatabilityInputError(
            f"squidpy has no dataset {name!r}; known here: {sorted(SQUIDPY_DATASETS)}."
        )
    target = (Path(path) if path is not None else squidpy_cache_path(name)).absolute()
    cached = target.is_file()
    if not cached:
        server = url or _squidpy_url()
        problem = unreachable(server, timeout)
        if problem is not None:
            raise SampleDownloadError(
                f"Downloading squidpy's {name!r} dataset failed: {problem}. It would be cached "
                f"at {target} (put the file there by hand to use it offline). " + _OFFLINE_HINT
            )
        logger.info("Downloading squidpy's %r dataset from %s into %s.", name, server, target)
    try:
        return loader(path=target)
    except AnnotatabilityInputError:
        raise
    except Exception as err:  # pooch / requests / squidpy raise many kinds
        if cached:
            raise AnnotatabilityInputError(
                f"The cached squidpy dataset {str(target)!r} cannot be read "
                f"({type(err).__name__}: {err}); delete it to download it again."
            ) from err
        raise SampleDownloadError(
            f"Downloading squidpy's {name!r} dataset failed ({type(err).__name__}: {err}). "
            f"It would be cached at {target}. " + _OFFLINE_HINT
        ) from err


def squidpy_sample(
    name: str,
    *,
    path: str | os.PathLike | None = None,
    url: str | None = None,
    timeout: float = PROBE_TIMEOUT,
) -> list[tuple]:
    """Layers of one of squidpy's datasets (see :func:`squidpy_dataset`).

    Cells are coloured by the dataset's annotation (:data:`SQUIDPY_DATASETS`, else the
    reader's guess); datasets of several sections get one layer per section.
    """
    adata = squidpy_dataset(name, path=path, url=url, timeout=timeout)
    label_key, section_key = SQUIDPY_DATASETS.get(name, (None, None))
    if label_key not in adata.obs.columns:
        label_key = guess_label_key(adata)
    if section_key not in adata.obs.columns or adata.obs[section_key].nunique() < 2:
        section_key = None
    if label_key is not None:
        adata.uns.setdefault("label_key", label_key)
    return anndata_layers(adata, label_key, library_key=section_key)


def visium_hne_squidpy_sample() -> list[tuple]:
    """The 10x Visium H&E mouse brain of squidpy (2,688 spots, clusters, H&E image)."""
    return squidpy_sample("visium_hne_adata")


def merfish_squidpy_sample() -> list[tuple]:
    """The MERFISH mouse hypothalamus of squidpy (73,655 cells, cell classes, by section)."""
    return squidpy_sample("merfish")


def seqfish_squidpy_sample() -> list[tuple]:
    """The seqFISH mouse embryo of squidpy (19,416 cells, refined cell types)."""
    return squidpy_sample("seqfish")


def four_i_squidpy_sample() -> list[tuple]:
    """The 4i imaging dataset of squidpy (270,876 cells, clusters)."""
    return squidpy_sample("four_i")
