"""Safe (atomic) reading and writing of AnnData files and tables.

Files: ``.h5ad`` files and AnnData ``.zarr`` folders are read with :func:`read_anndata` and
written with :func:`write_anndata_atomic` (a temporary file or folder beside the target,
then a rename), so a failed or interrupted write never leaves a partial file.

What goes where inside the AnnData is defined in :mod:`napari_annotatability.core.keys`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import anndata as ad
from anndata import AnnData

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.keys import adopt_unkeyed_audit

logger = logging.getLogger(__name__)

_VERSIONED = ("napari-annotatability", "torch", "numpy", "scipy", "anndata", "scanpy")


def package_versions() -> dict[str, str]:
    """Versions of this package and of the libraries that shape its results."""
    found = {}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


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
    # text columns stay text (anndata would turn them into categoricals, in memory too)
    return _write_atomically(
        path,
        overwrite,
        lambda tmp: adata.write_h5ad(
            tmp, compression=compression, convert_strings_to_categoricals=False
        ),
    )


def write_csv_atomic(
    table, path: str | os.PathLike, *, overwrite: bool = False, sep: str = ","
) -> Path:
    """Write a pandas table as CSV (or TSV with a tab ``sep``) through a temporary file."""
    return _write_atomically(path, overwrite, lambda tmp: table.to_csv(tmp, sep=sep, index=False))


def write_text_atomic(text: str, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return _write_atomically(path, overwrite, lambda tmp: Path(tmp).write_text(text, "utf-8"))


def _write_atomically(
    path: str | os.PathLike, overwrite: bool, write: Callable[[str], object]
) -> Path:
    path = _check_target(path, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private (0600)
        write(tmp)
        move_into_place(Path(tmp), path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    logger.info("Wrote %s.", path)
    return path


def _check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output (unless ``overwrite``) and a missing output folder."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise AnnotatabilityInputError(
            f"Output {str(path)!r} already exists; choose another path or allow overwriting "
            "(CLI: --overwrite)."
        )
    if not path.parent.is_dir():
        raise AnnotatabilityInputError(
            f"Output folder {str(path.parent)!r} does not exist; create it first."
        )
    return path


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def move_into_place(new: Path, path: Path) -> None:
    """Move the complete ``new`` (file or folder) to ``path``, replacing what is there.

    A file replacing a file (or nothing) is one atomic rename. An existing folder (or a
    file replaced by a folder) is first renamed aside, then ``new`` is renamed in, then
    the old one is deleted: ``path`` is never a half-written or mixed version (only absent
    for the moment between the two renames), and the old one is put back if the new one
    cannot be moved in.
    """
    if not (path.exists() or path.is_symlink()) or (new.is_file() and not path.is_dir()):
        os.replace(new, path)
        return
    aside_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    aside = aside_dir / path.name
    os.rename(path, aside)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(aside, path)
        aside_dir.rmdir()
        raise
    shutil.rmtree(aside_dir, ignore_errors=True)
    if aside_dir.exists():
        logger.warning("Could not delete the replaced version, left in %s.", aside_dir)


def write_zarr_atomic(adata: AnnData, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``adata`` as an AnnData ``.zarr`` folder through a temporary folder and a rename.

    The store is written to a hidden temporary folder beside ``path`` and renamed to
    ``path`` when complete. An existing store is replaced (with ``overwrite``) by renaming
    it aside, moving the new one in and then deleting the old one, so ``path`` never holds
    a half-written store; an error or an interrupt leaves no temporary folder behind.
    The zarr format is anndata's ``settings.zarr_write_format`` (2 by default).

    Parameters
    ----------
    adata
        What to write (not modified: text columns stay text).
    path
        Destination folder, usually ending in ``.zarr``.
    overwrite
        Replace an existing store (refused otherwise).

    Returns
    -------
    The destination path.
    """
    path = _check_target(path, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private (0700)
        with warnings.catch_warnings():
            # anndata's notice that v3 will become its default; the format is its setting
            warnings.filterwarnings(
                "ignore", message="Writing zarr v2 data will no longer", category=UserWarning
            )
            adata.write_zarr(tmp, convert_strings_to_categoricals=False)
        move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Wrote %s.", path)
    return path


#: File suffixes of the AnnData formats read and written, and their names.
ANNDATA_SUFFIXES = {".h5ad": "h5ad", ".zarr": "zarr"}


def anndata_format(path: str | os.PathLike) -> str:
    """``"h5ad"`` or ``"zarr"`` from the suffix of ``path``; a clear error otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in ANNDATA_SUFFIXES:
        raise AnnotatabilityInputError(
            f"Cannot tell the format of {str(path)!r} from its suffix {suffix or '(none)'!r}; "
            "name it *.h5ad (one file) or *.zarr (a folder)."
        )
    return ANNDATA_SUFFIXES[suffix]


def read_anndata(path: str | os.PathLike) -> AnnData:
    """Read an ``.h5ad`` file or an AnnData ``.zarr`` folder, with clear errors.

    Parameters
    ----------
    path
        An ``.h5ad`` (or ``.h5``) file, or a folder written by ``AnnData.write_zarr``.

    Returns
    -------
    The AnnData, fully in memory.

    Raises
    ------
    AnnotatabilityInputError
        When the path does not exist, is neither an ``.h5ad`` file nor a folder, or
        cannot be read as AnnData (the message includes the reader's error).
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        raise AnnotatabilityInputError(f"Input {str(path)!r} does not exist; check the path.")
    if path.is_dir():
        kind, read = "a .zarr folder", ad.read_zarr
    elif path.suffix.lower() == ".zarr":
        raise AnnotatabilityInputError(
            f"Input {str(path)!r} is a file, but an AnnData .zarr store is a folder; "
            "was it copied or zipped?"
        )
    elif path.suffix.lower() in (".h5ad", ".h5"):
        kind, read = ".h5ad", ad.read_h5ad
    else:
        raise AnnotatabilityInputError(
            f"Input {str(path)!r} is not an AnnData file: expected an .h5ad file or a .zarr "
            f"folder, got a {path.suffix or 'suffix-less'} file."
        )
    try:
        with warnings.catch_warnings():
            # said clearly where it matters (require_unique_cell_ids, the reader)
            warnings.filterwarnings("ignore", message="Observation names are not unique")
            adata = read(path)
    except Exception as err:  # h5py, zarr and anndata raise many kinds for a bad file
        raise AnnotatabilityInputError(
            f"Could not read {str(path)!r} as AnnData ({kind}): {type(err).__name__}: {err}"
        ) from err
    adopt_unkeyed_audit(adata)
    return adata


def write_anndata_atomic(
    adata: AnnData, path: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write ``adata`` atomically as ``.h5ad`` or ``.zarr``, chosen by the suffix of ``path``.

    See :func:`write_h5ad_atomic` and :func:`write_zarr_atomic`; any other suffix, and a
    SpatialData store as the target, are an :class:`AnnotatabilityInputError` (before
    anything is written).
    """
    from napari_annotatability.core.spatialdata_read import is_spatialdata_store

    if is_spatialdata_store(path):
        raise AnnotatabilityInputError(
            f"{str(path)!r} is a SpatialData store: replacing it with an AnnData would lose its "
            "images and shapes. Write the results into its table instead (napari: 'Write into "
            "SpatialData table'; Python: nat.write_spatialdata; CLI: -o STORE --overwrite with "
            "the store as input), or choose another path."
        )
    if anndata_format(path) == "zarr":
        return write_zarr_atomic(adata, path, overwrite=overwrite)
    return write_h5ad_atomic(adata, path, overwrite=overwrite)


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file or folder (also through links)."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return a.samefile(b)
    return a.resolve() == b.resolve()


def save_curated(
    adata: AnnData,
    path: str | os.PathLike,
    *,
    opened_from: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a curated AnnData as ``.h5ad`` or ``.zarr`` (by suffix), atomically.

    Parameters
    ----------
    adata
        The data with its curated column, reviewed marks and edit log.
    path
        Destination ``.h5ad`` file or ``.zarr`` folder.
    opened_from
        The file the data was read from: writing over it is refused unless
        ``overwrite=True`` (the original stays the reference until you confirm).
    overwrite
        Replace an existing file, including the one the data came from.

    Returns
    -------
    The destination path.
    """
    if opened_from is not None and not overwrite and same_path(path, opened_from):
        raise AnnotatabilityInputError(
            f"{str(path)!r} is the file the data was opened from; save under another name, "
            "or confirm replacing it with overwrite=True (CLI: --overwrite)."
        )
    return write_anndata_atomic(adata, path, overwrite=overwrite)
