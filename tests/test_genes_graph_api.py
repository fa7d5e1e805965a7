import numpy as np
import pytest
import scanpy as sc

import napari_annotatability as nat
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.datasets import synthetic_tissue


@pytest.fixture(scope="module")
def scored():
    adata = synthetic_tissue(n_cells=800, n_genes=60, n_classes=4, seed=5)
    nat.annotate(adata, "label", normalize=True, epochs=10, lr=0.01, suggest=False, device="cpu")
    return adata


def test_gene_scores_write_var_and_a_ranked_table(scored):
    adata = scored.copy()
    table = nat.gene_scores(adata, layer="counts", min_counts=100)
    kept = adata.var["conf_score_filtered"] == ""
    assert adata.var.loc[kept, "conf_score_high"].notna().all()
    assert adata.var.loc[~kept, "conf_score_high"].isna().all()
    assert set(adata.var.loc[~kept, "conf_score_filtered"]) <= {
        "total counts < 100",
        "constant across cells",
    }
    assert list(table.columns) == ["gene", "score", "direction", "rank"]
    high = table[table["direction"] == "high"]
    assert high["score"].is_monotonic_decreasing
    assert len(high) == kept.sum()
    info = adata.uns["annotatability_genes"]
    assert info["n_scored"] == kept.sum() and info["layer"] == "counts"


def test_gene_scores_need_confidence():
    adata = synthetic_tissue(n_cells=50, seed=0)
    with pytest.raises(AnnotatabilityInputError, match="run annotate"):
        nat.gene_scores(adata)


def test_graph_is_where_scanpy_finds_it(scored):
    adata = scored.copy()
    assert "X_pca" not in adata.obsm
    adata.X = adata.X.astype(np.float32)
    sc.pp.log1p(adata)
    nat.trainability_graph(adata, k=10, key_added="trainability")
    assert "X_pca" in adata.obsm  # computed with scanpy
    conn = adata.obsp["trainability_connectivities"]
    assert (conn != conn.T).nnz == 0
    assert (adata.obsp["trainability_distances"].getnnz(axis=1) == 10).all()
    params = adata.uns["trainability"]["params"]
    assert params["n_neighbors"] == 10 and params["mean_distance_exact"]
    sc.tl.umap(adata, neighbors_key="trainability")
    sc.tl.leiden(
        adata,
        neighbors_key="trainability",
        flavor="igraph",
        n_iterations=2,
        directed=False,
        key_added="conf_leiden",
    )
    assert adata.obsm["X_umap"].shape == (adata.n_obs, 2)
    assert adata.obs["conf_leiden"].nunique() > 1
    with pytest.raises(AnnotatabilityInputError, match="already holds a graph"):
        nat.trainability_graph(adata, key_added="trainability")
    nat.trainability_graph(
        adata, key_added="trainability", overwrite=True, alpha=0.5, mean_distance="estimate"
    )
    assert not adata.uns["trainability"]["params"]["mean_distance_exact"]
    assert 0 < adata.uns["trainability"]["params"]["mean_distance_rel_error"] < 0.01


def test_graph_errors(scored):
    adata = scored.copy()
    with pytest.raises(AnnotatabilityInputError, match="'X_umap' not found"):
        nat.trainability_graph(adata, use_rep="X_umap")
    del adata.uns["label_annotatability"]
    with pytest.raises(AnnotatabilityInputError, match="No audit in adata"):
        nat.trainability_graph(adata)
