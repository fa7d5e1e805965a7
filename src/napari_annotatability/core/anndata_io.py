"""What goes where in AnnData, and safe (atomic) reading and writing of ``.h5ad`` files.

One place defines every key the package writes:

- ``obs["conf"]``, ``obs["var"]``: confidence and variability (reference names).
- ``obs[f"{label_key}_flag"]``: Easy-to-learn / Ambiguous / Hard-to-learn.
- ``obs[f"{label_key}_suggested"]``: suggested label of Hard-to-learn cells (NaN elsewhere).
- ``obsm["annotatability_probabilities"]``: cells x epochs record, when asked.
- ``uns["annotatability"]``: parameters, seed, device, cut-offs, counts, versions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import anndata as ad
from anndata import AnnData

from napari_annotatability.core.errors import AnnotatabilityInputError

logger = logging.getLogger(__name__)

CONF_KEY = "conf"
VAR_KEY = "var"
UNS_KEY = "annotatability"
RECORD_KEY = "annotatability_probabilities"
_VERSIONED = ("napari-annotatability", "torch", "numpy", "scipy", "anndata", "scanpy")


def flag_key(label_key: str) -> str:
    """``obs`` column of the flags for annotation ``label_key``."""
    return f"{label_key}_flag"


def suggestion_key(label_key: str) -> str:
    """``obs`` column of the suggested corrections for annotation ``label_key``."""
    return f"{label_key}_suggested"


def package_versions() -> dict[str, str]:
    """Versions of this package and of the libraries that shape its results."""
    found = {}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def read_h5ad(path: str | os.PathLike) -> AnnData:
    """Read an ``.h5ad`` file with a clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise AnnotatabilityInputError(f"Input file {str(path)!r} does not exist.")
    try:
        return ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as err:
        raise AnnotatabilityInputError(
            f"Could not read {str(path)!r} as AnnData (.h5ad): {err}"
        ) from err


def write_h5ad_atomic(
    adata: AnnData,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    compression: str | None = "gzip",
) -> Path:
    """Write ``adata`` to ``path`` through a temporary file and a rename.

    The destination is either the complete new file or untouched: an error or an
    interrupt while writing leaves no partial file behind.

    Parameters
    ----------
    adata
        What to write.
    path
        Destination ``.h5ad``.
    overwrite
        Replace an existing file (refused otherwise).
    compression
        h5py compression of the datasets.

    Returns
    -------
    The destination path.
    """
    return _write_atomically(
        path, overwrite, lambda tmp: adata.write_h5ad(tmp, compression=compression)
    )


def write_csv_atomic(table, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a pandas table as CSV through a temporary file and a rename."""
    return _write_atomically(path, overwrite, lambda tmp: table.to_csv(tmp, index=False))


def _write_atomically(
    path: str | os.PathLike, overwrite: bool, write: Callable[[str], object]
) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise AnnotatabilityInputError(
            f"Output {str(path)!r} already exists; choose another path or allow overwriting "
            "(CLI: --overwrite)."
        )
    if not path.parent.is_dir():
        raise AnnotatabilityInputError(
            f"Output folder {str(path.parent)!r} does not exist; create it first."
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    logger.info("Wrote %s.", path)
    return path
