"""File > Open Sample: the bundled Visium DLPFC section and the synthetic tissue."""

from __future__ import annotations

from napari_annotatability import datasets
from napari_annotatability._napari.layers import cells_layer


def visium_dlpfc_sample() -> list[tuple]:
    """The bundled Visium DLPFC section, spots coloured by their manual layer label."""
    adata = datasets.visium_dlpfc()
    return [cells_layer(adata, datasets.SAMPLE_LABEL_KEY, name="DLPFC layer")]


def synthetic_tissue_sample() -> list[tuple]:
    """A synthetic layered tissue with 10% known label errors, coloured by label."""
    adata = datasets.synthetic_tissue()
    return [cells_layer(adata, "label", name="synthetic label")]
