import numpy as np
import scipy.sparse as sp

from napari_annotatability.datasets import synthetic_tissue, visium_dlpfc


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
