import numpy as np
import pytest
import scipy.sparse as sp

from napari_annotatability.core import graph as graph_module
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.graph import (
    confidence_ranks,
    estimate_mean_pairwise_distance,
    mean_mixed_distance,
    mean_pairwise_distance,
    trainability_graph,
)


def dense_definition(Z, conf, alpha, k):
    """METHOD 5 by brute force with full n x n matrices (ties by lower index)."""
    n = len(conf)
    D = np.linalg.norm(Z[:, None, :] - Z[None, :, :], axis=2)
    r = confidence_ranks(conf)
    mixed = alpha * D / D.mean() + (1 - alpha) * np.abs(r[:, None] - r[None, :]) / ((n + 1) / 3)
    assert np.isclose(mixed.mean(), alpha + (1 - alpha) * (n - 1) / n)  # closed form of Dbar'
    W = np.zeros((n, n))
    dist = np.zeros((n, n))
    for i in range(n):
        candidates = [j for j in range(n) if j != i]
        best = sorted(candidates, key=lambda j: (mixed[i, j], j))[:k]
        dist[i, best] = mixed[i, best]
        W[i, best] = np.exp(-mixed[i, best] / mixed.mean())
    return np.maximum(W, W.T), dist


def tissue(n, seed, ties):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 5))
    conf = rng.random(n)
    if ties:
        Z[n // 2 :] = Z[: n - n // 2]  # duplicated cells: equal embedding distances
        conf[::3] = 0.5  # equal confidences: ranks by index
        Z = np.round(Z, 1)  # many equal distances
    return Z, conf


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("alpha", "k"), [(0.9, 15), (0.5, 5), (1.0, 10), (0.0, 7)])
def test_graph_equals_the_dense_definition(alpha, k, ties):
    Z, conf = tissue(300, seed=int(alpha * 10) + k, ties=ties)
    graph = trainability_graph(Z, conf, alpha=alpha, k=k)
    W, dist = dense_definition(Z, conf, alpha, k)
    np.testing.assert_array_equal(graph.distances.toarray() > 0, dist > 0)
    np.testing.assert_allclose(graph.distances.toarray(), dist, atol=1e-6)
    np.testing.assert_allclose(graph.connectivities.toarray(), W, atol=1e-6)
    assert (graph.distances.getnnz(axis=1) == k).all()
    assert (abs(graph.connectivities - graph.connectivities.T)).max() == 0


@pytest.mark.parametrize("ties", [False, True])
def test_rows_rescored_within_the_tolerance_are_exact(monkeypatch, ties):
    # a huge tolerance sends every row down the rescoring path of near-tied candidates
    monkeypatch.setattr(graph_module, "_TOLERANCE_SAFETY", 1e4)
    Z, conf = tissue(200, seed=3, ties=ties)
    graph = trainability_graph(Z, conf, alpha=0.8, k=6)
    W, dist = dense_definition(Z, conf, 0.8, 6)
    np.testing.assert_allclose(graph.distances.toarray(), dist, atol=1e-6)
    np.testing.assert_allclose(graph.connectivities.toarray(), W, atol=1e-6)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("alpha", "k"), [(0.9, 15), (0.5, 4), (1.0, 8)])
def test_cluster_pruned_search_is_exact(monkeypatch, alpha, k, ties):
    # the search used above 20,000 cells, forced here on a small clustered tissue
    monkeypatch.setattr(graph_module, "_PRUNE_ABOVE", 0)
    rng = np.random.default_rng(k)
    centres = rng.normal(0, 6, (6, 5))
    Z = centres[rng.integers(0, 6, 400)] + rng.normal(size=(400, 5))
    conf = rng.random(400)
    if ties:
        Z[200:] = Z[:200]
        conf[::4] = 0.5
    graph = trainability_graph(Z, conf, alpha=alpha, k=k)
    W, dist = dense_definition(Z, conf, alpha, k)
    np.testing.assert_allclose(graph.distances.toarray(), dist, atol=1e-6)
    np.testing.assert_allclose(graph.connectivities.toarray(), W, atol=1e-6)


def test_ranks_are_stable():
    np.testing.assert_array_equal(confidence_ranks([0.5, 0.1, 0.5, 0.0]), [2, 1, 3, 0])


def test_mean_distance_exact_and_estimated():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(500, 4))
    exact = mean_pairwise_distance(Z)
    brute = np.linalg.norm(Z[:, None] - Z[None], axis=2).mean()
    assert exact == pytest.approx(brute, rel=1e-9)
    estimate, rel_error = estimate_mean_pairwise_distance(Z, n_pairs=200_000)
    assert abs(estimate - exact) / exact < 5 * rel_error
    assert 0 < rel_error < 0.01
    assert mean_mixed_distance(4, 0.9) == pytest.approx(0.9 + 0.1 * 3 / 4)


def test_bad_graph_input():
    Z, conf = tissue(20, 0, False)
    with pytest.raises(AnnotatabilityInputError, match="alpha"):
        trainability_graph(Z, conf, alpha=1.5)
    with pytest.raises(AnnotatabilityInputError, match="k must be"):
        trainability_graph(Z, conf, k=20)
    with pytest.raises(AnnotatabilityInputError, match="same cells"):
        trainability_graph(Z, conf[:5])
    conf[3] = np.nan
    with pytest.raises(AnnotatabilityInputError, match="NaN"):
        trainability_graph(Z, conf)
    assert sp.issparse(trainability_graph(Z, np.nan_to_num(conf), k=3).connectivities)
