import numpy as np
import pytest
import scipy.sparse as sp

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.genes import gene_scores, mid_weights


def method_by_hand(X, conf, min_counts, power, power_low):
    keep = X.sum(0) >= min_counts
    A = X[:, keep] - X[:, keep].mean(0)
    A = A / np.linalg.norm(A, axis=0)
    w_high = conf / conf.sum()
    w_low = (1 - conf) / (1 - conf).sum()
    m = np.where(np.abs(w_high - w_high.mean()) > w_high.var(), 0.0, 1.0)
    return keep, A.T @ w_high**power, A.T @ w_low**power_low, A.T @ m


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(("power", "power_low"), [(1, 1), (2, 3)])
def test_scores_follow_the_method(sparse, power, power_low):
    rng = np.random.default_rng(0)
    X = rng.poisson(0.5, size=(400, 30)).astype(np.float32)
    X[:, :3] = 0
    X[:5, 0] = 1  # a gene under min_counts
    conf = rng.random(400)
    keep, high, low, mid = method_by_hand(X.astype(np.float64), conf, 100, power, power_low)
    scores = gene_scores(
        sp.csr_matrix(X) if sparse else X, conf, min_counts=100, power=power, power_low=power_low
    )
    np.testing.assert_array_equal(scores.kept, keep)
    np.testing.assert_allclose(scores.high, high, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scores.low, low, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scores.mid, mid, rtol=1e-9, atol=1e-12)
    assert scores.too_few_counts[:3].all()


def test_low_is_minus_high_scaled_with_unit_powers():
    rng = np.random.default_rng(1)
    X = rng.poisson(2.0, size=(300, 10)).astype(np.float32)
    conf = rng.random(300)
    s = gene_scores(X, conf, min_counts=0)
    np.testing.assert_allclose(s.low, -s.high * conf.sum() / (1 - conf).sum(), rtol=1e-9)


def test_constant_genes_are_left_out_and_named():
    X = np.ones((50, 3), dtype=np.float32) * 5
    X[:, 1] = np.arange(50)
    s = gene_scores(X, np.linspace(0.1, 0.9, 50), min_counts=1)
    assert list(s.constant) == [True, False, True]
    assert list(s.kept) == [False, True, False]


def test_mid_weights_by_hand():
    np.testing.assert_array_equal(mid_weights(np.array([0.5, 0.5, 0.5, 0.5])), [1, 1, 1, 1])


def test_bad_conf():
    X = np.ones((4, 2))
    with pytest.raises(AnnotatabilityInputError, match="4 cells"):
        gene_scores(X, np.ones(3) * 0.5)
    with pytest.raises(AnnotatabilityInputError, match="non-finite"):
        gene_scores(X, np.array([0.1, np.nan, 0.2, 0.3]))
    with pytest.raises(AnnotatabilityInputError, match="all 0 or all 1"):
        gene_scores(X, np.ones(4))
