"""Shared fixtures: the real datasets of ``../shared/data`` (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("ANNOTATABILITY_DATA", REPO.parent / "shared" / "data"))


def shared_dataset_path(name: str) -> Path:
    """Path of ``<name>/<name>.h5ad`` in the shared data folder, or skip the test."""
    path = DATA_DIR / name / f"{name}.h5ad"
    if not path.is_file():
        pytest.skip(
            f"real dataset {name!r} not found at {path}; put the shared data folder beside the "
            "repository or set ANNOTATABILITY_DATA"
        )
    return path


@pytest.fixture
def load_shared():
    """Load a real dataset by folder name (a fresh copy for each call)."""

    def load(name: str) -> ad.AnnData:
        return ad.read_h5ad(shared_dataset_path(name))

    return load


@pytest.fixture
def dlpfc_store(tmp_path):
    """The bundled Visium DLPFC sample as a Xenium-like SpatialData store (polygons, image)."""
    pytest.importorskip("spatialdata")
    from napari_annotatability import datasets

    return datasets.write_spatialdata_store(datasets.visium_dlpfc(), tmp_path / "dlpfc.zarr")


@pytest.fixture
def two_section_store(tmp_path):
    """The bundled sample cut into two sections: two regions, coordinate systems, images."""
    pytest.importorskip("spatialdata")
    import numpy as np

    from napari_annotatability import datasets

    adata = datasets.visium_dlpfc()
    adata.obs["sample"] = np.where(adata.obsm["spatial"][:, 0] < 60, "A", "B")
    return datasets.write_spatialdata_store(
        adata, tmp_path / "two.zarr", section_key="sample", shapes="circles"
    )
