"""Spatial context: neighbour label agreement and the combined confidence."""

from __future__ import annotations

import numpy as np
import pytest

from napari_annotatability import api, datasets
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.spatial import neighbour_agreement, spatial_confidence


def test_agreement_on_a_grid():
    rows, cols = np.mgrid[0:10, 0:10]
    coords = np.column_stack([rows.ravel(), cols.ravel()]).astype(float)
    codes = (cols.ravel() >= 5).astype(int)  # two halves
    codes[0] = 1  # a mislabelled corner cell
    codes[55] = -1  # an unlabelled one
    agreement = neighbour_agreement(coords, codes, k=4)
    assert agreement[0] == 0.0
    assert np.isnan(agreement[55])
    assert agreement[22] == 1.0  # deep inside the left half
    # cell 45 (row 4, col 5): neighbours 35 and 46 agree, 44 does not, 55 is unlabelled
    # and not counted
    assert agreement[45] == pytest.approx(2 / 3)
    with pytest.raises(AnnotatabilityInputError, match="one label per cell"):
        neighbour_agreement(coords, codes[:5])
    with pytest.raises(AnnotatabilityInputError, match="at least 1"):
        neighbour_agreement(coords, codes, k=0)
    np.testing.assert_allclose(spatial_confidence([0.2, 0.8], [1.0, 0.0], 0.25), [0.4, 0.6])
    with pytest.raises(AnnotatabilityInputError, match=r"\[0, 1\]"):
        spatial_confidence([0.2], [1.0], 1.5)


def test_spatial_context_flags_flipped_cells_by_their_neighbours():
    adata = datasets.synthetic_tissue(n_cells=800, n_genes=60, n_classes=4, seed=2)
    with pytest.raises(AnnotatabilityInputError, match="run annotate"):
        api.spatial_context(adata, "label")
    api.annotate(adata, "label", epochs=20, calibrate=False, suggest=False)
    table = api.spatial_context(adata, "label", k=8, weight=0.5)
    assert list(table.columns) == ["label_neighbour_agreement", "conf_spatial"]
    flipped = adata.obs["is_flipped"].to_numpy()
    agreement = adata.obs["label_neighbour_agreement"].to_numpy()
    assert agreement[flipped].mean() < 0.5 < agreement[~flipped].mean()
    np.testing.assert_allclose(adata.obs["conf_spatial"], 0.5 * adata.obs["conf"] + 0.5 * agreement)
    assert adata.uns["annotatability"]["spatial_context"]["k"] == 8
