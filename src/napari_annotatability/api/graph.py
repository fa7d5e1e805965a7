"""The trainability-aware kNN graph (METHOD section 5), where scanpy finds it."""

from __future__ import annotations

import logging

import numpy as np
from anndata import AnnData

from napari_annotatability.api.stored_audits import confidence_key
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.results import GraphResult

logger = logging.getLogger(__name__)


def trainability_graph(
    adata: AnnData,
    *,
    label_key: str | None = None,
    conf_key: str | None = None,
    use_rep: str = "X_pca",
    alpha: float = 0.9,
    k: int = 15,
    key_added: str = "trainability",
    mean_distance: str = "auto",
    overwrite: bool = False,
) -> None:
    """Build the trainability-aware kNN graph (METHOD section 5) where scanpy finds it.

    Writes ``obsp[f"{key_added}_connectivities"]``, ``obsp[f"{key_added}_distances"]`` and
    ``uns[key_added]`` in the layout of ``sc.pp.neighbors``, so that
    ``sc.tl.umap(adata, neighbors_key=key_added)`` and ``sc.tl.leiden(adata,
    neighbors_key=key_added)`` use it. Computes PCA with scanpy when ``use_rep`` is
    ``"X_pca"`` and missing.

    Parameters
    ----------
    adata
        Data with an audit (run :func:`annotate` first).
    label_key, conf_key
        The audited annotation whose confidence to use (default: the only one audited),
        or another confidence column.
    use_rep
        The embedding in ``obsm``.
    alpha, k
        Mixing weight of embedding distance vs confidence-rank distance; neighbours.
    key_added
        Name of the graph; an existing one is kept unless ``overwrite``.
    mean_distance
        ``"exact"`` (O(n^2 d) time, O(n) memory), ``"estimate"`` (random pairs; the relative
        error is recorded) or ``"auto"`` (exact up to 50,000 cells).
    overwrite
        Replace an existing graph of that name.
    """
    compute_trainability_graph(
        adata,
        label_key=label_key,
        conf_key=conf_key,
        use_rep=use_rep,
        alpha=alpha,
        k=k,
        key_added=key_added,
        mean_distance=mean_distance,
        overwrite=overwrite,
    ).write(adata)


def compute_trainability_graph(
    adata: AnnData,
    *,
    label_key: str | None = None,
    conf_key: str | None = None,
    use_rep: str = "X_pca",
    alpha: float = 0.9,
    k: int = 15,
    key_added: str = "trainability",
    mean_distance: str = "auto",
    overwrite: bool = False,
) -> GraphResult:
    """Compute what :func:`trainability_graph` writes, leaving ``adata`` unchanged."""
    from napari_annotatability.core import graph as g

    conf_key = confidence_key(adata, label_key, conf_key)
    if key_added in adata.uns and not overwrite:
        raise AnnotatabilityInputError(
            f"adata.uns[{key_added!r}] already holds a graph; choose another key_added "
            "(CLI: --key-added) or pass overwrite=True (CLI: --overwrite)."
        )
    if mean_distance not in ("auto", "exact", "estimate"):
        raise AnnotatabilityInputError(
            f"mean_distance must be 'auto', 'exact' or 'estimate'; got {mean_distance!r}."
        )
    pca = None
    if use_rep in adata.obsm:
        Z = np.asarray(adata.obsm[use_rep])
    elif use_rep == "X_pca":
        import scanpy as sc

        logger.warning("adata.obsm['X_pca'] is missing; computing PCA with scanpy.")
        pca = sc.pp.pca(adata.X, return_info=True)
        Z = np.asarray(pca[0])
    else:
        raise AnnotatabilityInputError(
            f"Embedding {use_rep!r} not found in adata.obsm; available: "
            f"{sorted(adata.obsm.keys()) or 'none'}."
        )
    exact = mean_distance == "exact" or (mean_distance == "auto" and adata.n_obs <= 50_000)
    dbar, rel_error = (
        (g.mean_pairwise_distance(Z), 0.0) if exact else g.estimate_mean_pairwise_distance(Z)
    )
    result = g.trainability_graph(
        Z, adata.obs[conf_key].to_numpy(), alpha=alpha, k=k, mean_distance=dbar
    )
    conn_key, dist_key = f"{key_added}_connectivities", f"{key_added}_distances"
    uns = {
        "connectivities_key": conn_key,
        "distances_key": dist_key,
        "params": {
            "n_neighbors": int(k),
            "method": "annotatability",
            "metric": "trainability-aware",
            "use_rep": use_rep,
            "alpha": float(alpha),
            "conf_key": conf_key,
            "mean_distance": float(dbar),
            "mean_distance_exact": bool(exact),
            "mean_distance_rel_error": float(rel_error),
        },
    }
    return GraphResult(
        key_added=key_added,
        connectivities=result.connectivities,
        distances=result.distances,
        uns=uns,
        pca=pca,
    )
