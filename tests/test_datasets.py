import numpy as np
import pytest
import scipy.sparse as sp

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.datasets import add_label_errors, synthetic_tissue, visium_dlpfc


def test_synthetic_tissue_has_known_errors_and_mixtures():
    adata = synthetic_tissue(
        n_cells=2000, n_genes=100, n_classes=4, noise_rate=0.2, mixed_fraction=0.1, seed=3
    )
    assert adata.shape == (2000, 100)
    assert sp.isspmatrix_csr(adata.X)
    obs = adata.obs
    assert abs(obs["is_flipped"].mean() - 0.2) < 0.03
    assert obs["is_mixed"].sum() == 200
    flipped = obs["is_flipped"].to_numpy()
    assert (obs["label"][flipped] != obs["true_label"][flipped]).all()
    assert (obs["label"][~flipped] == obs["true_label"][~flipped]).all()
    assert adata.obsm["spatial"].shape == (2000, 2)
    again = synthetic_tissue(
        n_cells=2000, n_genes=100, n_classes=4, noise_rate=0.2, mixed_fraction=0.1, seed=3
    )
    assert (adata.X != again.X).nnz == 0


def test_synthetic_layers_are_spatially_ordered():
    adata = synthetic_tissue(n_cells=3000, seed=0)
    y = adata.obsm["spatial"][:, 1]
    means = [y[adata.obs["true_label"] == c].mean() for c in adata.obs["true_label"].cat.categories]
    assert np.all(np.diff(means) > 0)


def test_bundled_sample_loads():
    adata = visium_dlpfc()
    assert adata.shape == (3636, 144)
    assert adata.uns["label_key"] == "layer"
    assert adata.obs["layer"].nunique() == 5
    assert adata.obsm["spatial"].shape == (3636, 2)


def test_label_errors_move_the_asked_share_to_other_classes():
    adata = visium_dlpfc()
    before = adata.obs["layer"].copy()
    moved = add_label_errors(adata, "layer", 0.1, seed=4, key_added="noisy")
    assert adata.obs["layer"].equals(before)  # key_added leaves the annotation alone
    noisy = adata.obs["noisy"]
    assert list(noisy.cat.categories) == list(before.cat.categories)
    assert (noisy[moved] != before[moved]).all() and (noisy[~moved] == before[~moved]).all()
    assert abs(moved.mean() - 0.1) < 0.02
    again = add_label_errors(adata, "layer", 0.1, seed=4)  # in place, reproducible
    np.testing.assert_array_equal(again, moved)
    adata.obs["text"] = before.astype(str)
    with pytest.raises(AnnotatabilityInputError, match="not categorical"):
        add_label_errors(adata, "text")
