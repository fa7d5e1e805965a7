"""Shared helpers for the benchmarks: data, both implementations, timing and memory."""

from __future__ import annotations

import contextlib
import io
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData

from napari_annotatability.core.dynamics import (
    REFERENCE_TRAINING,
    TrainingParams,
    training_dynamics,
)
from napari_annotatability.core.scores import confidence_and_variability

#: The shared real datasets beside the repository.
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: (folder, label key, preprocessing its README calls for), smallest first.
REAL_DATASETS = [
    ("st_mob_stdeconvolve", "layer", "normalize_hvg"),
    ("cycif_scimap", "phenotype", None),
    ("merfish_lung_tessera", "cell_lineage", "normalize"),
    ("visium_dlpfc_steam", "layer", None),
    ("osmfish_sscortex", "cell_type", "normalize"),
]


def load_real(folder: str, how: str | None) -> AnnData:
    """A shared dataset preprocessed as its README says (normalise/log1p, 2000 HVGs)."""
    import anndata as ad
    import scanpy as sc

    adata = ad.read_h5ad(DATA / folder / f"{folder}.h5ad")
    if how and how.startswith("normalize"):
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
    if how == "normalize_hvg":
        sc.pp.highly_variable_genes(adata, n_top_genes=2000)
        adata = adata[:, adata.var["highly_variable"].to_numpy()].copy()
    return adata


def synthetic(
    n: int, g: int, *, density: float | None = None, n_classes: int = 10, seed: int = 0
) -> AnnData:
    """Cells x features with class structure; sparse CSR at ``density`` if given."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centres = rng.normal(0, 1, (n_classes, g)).astype(np.float32)
    blocks = []
    for start in range(0, n, 10000):  # blockwise: no dense n x g intermediate when sparse
        stop = min(n, start + 10000)
        block = np.abs(centres[labels[start:stop]] + rng.normal(0, 2, (stop - start, g)))
        block = block.astype(np.float32)
        if density is not None:
            block = sp.csr_matrix(block * (rng.random(block.shape) < density))
        blocks.append(block)
    X = sp.vstack(blocks, format="csr") if density is not None else np.vstack(blocks)
    obs = pd.DataFrame(
        {"label": pd.Categorical([f"c{c}" for c in labels])}, index=[str(i) for i in range(n)]
    )
    return AnnData(X=X, obs=obs)


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}, Python {platform.python_version()}"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours(adata: AnnData, key: str, epochs: int, seed: int = 0, device: str = "cpu", **kw):
    """Our engine at the reference's settings unless ``kw`` says otherwise.

    Returns (conf, var, seconds, per-epoch seconds excluding the first).
    """
    codes = adata.obs[key].cat.codes.to_numpy().astype(np.int64)
    n_classes = len(adata.obs[key].cat.categories)
    X = adata.X if sp.issparse(adata.X) else np.asarray(adata.X, dtype=np.float32)
    t0 = time.perf_counter()
    gen = training_dynamics(
        X,
        codes,
        n_classes,
        TrainingParams(epochs=epochs, seed=seed, **{**REFERENCE_TRAINING, **kw}),
        device=device,
    )
    stamps = []
    while True:
        try:
            next(gen)
            stamps.append(time.perf_counter())
        except StopIteration as stop:
            record = stop.value
            break
    total = time.perf_counter() - t0
    per_epoch = np.diff([t0, *stamps])
    conf, var = confidence_and_variability(record.probabilities)
    return conf, var, total, float(np.median(per_epoch[1:] if epochs > 1 else per_epoch))


def reference(adata: AnnData, key: str, epochs: int, seed: int = 0, device: str = "cpu", **kw):
    """The reference package (benchmark environment only): (conf, var, seconds)."""
    from Annotatability import models

    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (the reference draws from the legacy global RNG)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        probs = models.follow_training_dyn_neural_net(
            adata, label_key=key, iterNum=epochs, device=torch.device(device), **kw
        )
        conf, var = models.probability_list_to_confidence_and_var(
            probs, n_obs=adata.n_obs, epoch_num=epochs
        )
    total = time.perf_counter() - t0
    return np.asarray(conf.detach().cpu()), np.asarray(var.detach().cpu()), total


def reference_sampler_setup(adata: AnnData, key: str) -> float:
    from Annotatability import models

    t0 = time.perf_counter()
    models.create_weighted_sampler(adata, key)
    return time.perf_counter() - t0


def our_sampler_setup(adata: AnnData, key: str) -> float:
    from napari_annotatability.core.sampling import EpochSampler

    t0 = time.perf_counter()
    codes = torch.as_tensor(adata.obs[key].cat.codes.to_numpy().astype(np.int64))
    sampler = EpochSampler(
        codes,
        len(adata.obs[key].cat.categories),
        weighted=True,
        generator=torch.Generator().manual_seed(0),
    )
    sampler.draw()
    return time.perf_counter() - t0
