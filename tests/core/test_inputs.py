import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.inputs import (
    encode_labels,
    encode_second_labels,
    prepare_inputs,
    select_matrix,
)


def make(n=40, g=8, labels=None, X=None):
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(n, g)).astype(np.float32) if X is None else X
    labels = labels if labels is not None else np.array(["b", "a"] * (n // 2))
    adata = AnnData(
        X=X, obs=pd.DataFrame({"ct": pd.Categorical(labels)}, index=[f"c{i}" for i in range(n)])
    )
    adata.obs["score"] = rng.random(n)
    return adata


def test_labels_are_sorted_classes():
    adata = make(labels=np.array(["z", "a", "m", "a"] * 10))
    labels, keep = encode_labels(adata, "ct")
    assert labels.classes == ("a", "m", "z")
    assert list(labels.codes[:4]) == [2, 0, 1, 0]
    assert keep.all()
    assert list(labels.counts()) == [20, 10, 10]


def test_missing_label_key_lists_the_columns():
    with pytest.raises(
        AnnotatabilityInputError, match=r"'cell_type' not found.*Categorical columns: \['ct'\]"
    ):
        encode_labels(make(), "cell_type")


def test_fewer_than_two_classes():
    with pytest.raises(AnnotatabilityInputError, match=r"fewer than 2 classes \(only 'a'\)"):
        encode_labels(make(labels=np.array(["a"] * 40)), "ct")


def test_continuous_label_column_is_refused():
    with pytest.raises(AnnotatabilityInputError, match="continuous numbers"):
        encode_labels(make(), "score")


def test_integer_like_float_labels_are_accepted():
    adata = make()
    adata.obs["cluster"] = np.tile([0.0, 1.0, 2.0, 3.0], 10)
    labels, _ = encode_labels(adata, "cluster")
    assert labels.classes == ("0", "1", "2", "3")


def test_missing_labels_say_how_many_and_can_be_dropped():
    labels = np.array(["a", "b"] * 20, dtype=object)
    labels[[3, 7, 9]] = None
    adata = make(labels=labels)
    with pytest.raises(
        AnnotatabilityInputError, match=r"3 cell\(s\) with a missing label.*drop_missing=True"
    ):
        encode_labels(adata, "ct")
    encoded, keep = encode_labels(adata, "ct", drop_missing=True)
    assert keep.sum() == 37 and encoded.codes.size == 37
    inputs = prepare_inputs(adata, "ct", drop_missing=True)
    assert inputs.X.shape == (37, 8)


def test_single_cell_class_warns():
    labels = np.array(["a", "b"] * 20, dtype=object)
    labels[0] = "lonely"
    with pytest.warns(UserWarning, match="single cell.*'lonely'"):
        encode_labels(make(labels=labels), "ct")


@pytest.mark.parametrize("sparse", [False, True])
def test_nan_and_inf_are_counted(sparse):
    X = np.ones((40, 8), dtype=np.float32)
    X[1, 2] = np.nan
    X[5, 5] = np.inf
    adata = make(X=sp.csr_matrix(X) if sparse else X)
    with pytest.raises(AnnotatabilityInputError, match=r"X contains 2 NaN or infinite"):
        prepare_inputs(adata, "ct")


def test_zero_features():
    adata = make(X=np.zeros((40, 0), dtype=np.float32))
    with pytest.raises(AnnotatabilityInputError, match="zero features"):
        prepare_inputs(adata, "ct")


def test_layer_and_obsm_selection_and_errors():
    adata = make()
    adata.layers["counts"] = sp.csr_matrix(adata.X * 2)
    adata.obsm["X_pca"] = np.ones((40, 3))
    X, names, source = select_matrix(adata, layer="counts")
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32 and source == "layers['counts']"
    X, names, _ = select_matrix(adata, use_rep="X_pca")
    assert X.shape == (40, 3) and names == ("X_pca_0", "X_pca_1", "X_pca_2")
    with pytest.raises(AnnotatabilityInputError, match=r"Layer 'raw' not found.*\['counts'\]"):
        select_matrix(adata, layer="raw")
    with pytest.raises(AnnotatabilityInputError, match=r"'X_umap' not found in adata.obsm"):
        select_matrix(adata, use_rep="X_umap")
    with pytest.raises(AnnotatabilityInputError, match="choose one"):
        select_matrix(adata, layer="counts", use_rep="X_pca")


def test_normalize_refuses_scaled_data():
    adata = make(X=np.full((40, 8), -1.0, dtype=np.float32))
    with pytest.raises(AnnotatabilityInputError, match=r"negative values.*normalize=False"):
        prepare_inputs(adata, "ct", normalize=True)


def test_normalize_and_hvg_keep_sparse():
    rng = np.random.default_rng(1)
    adata = make(n=200, g=50, X=sp.csr_matrix(rng.poisson(1.0, (200, 50)).astype(np.float32)))
    inputs = prepare_inputs(adata, "ct", normalize=True, n_top_genes=10)
    assert sp.isspmatrix_csr(inputs.X)
    assert inputs.X.shape == (200, 10)
    assert len(inputs.feature_names) == 10
    before = adata.X.copy()
    normalised = prepare_inputs(adata, "ct", normalize=True)
    assert normalised.X.shape == (200, 50)
    np.testing.assert_allclose(np.expm1(normalised.X.toarray()).sum(1), 1e4, rtol=1e-3)
    assert (before != adata.X).nnz == 0  # input untouched


def test_second_labels_must_share_the_classes():
    adata = make()
    adata.obs["other"] = pd.Categorical(["a", "c"] * 20)
    labels, keep = encode_labels(adata, "ct")
    with pytest.raises(AnnotatabilityInputError, match=r"not in the trained annotation: \['c'\]"):
        encode_second_labels(adata, "other", labels.classes, keep)
    adata.obs["other"] = pd.Categorical(["a", "a"] * 20)
    assert set(encode_second_labels(adata, "other", labels.classes, keep)) == {0}
