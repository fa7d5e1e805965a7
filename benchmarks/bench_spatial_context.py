"""Does the tissue neighbourhood help find flipped labels? A first measurement.

For each real dataset: flip a fraction of labels uniformly to another class, audit with
the default settings, add :func:`napari_annotatability.spatial_context`, and compare the
AUROC of ``1 - conf`` (the method), ``1 - agreement`` (neighbours alone) and
``1 - conf_spatial`` (both, weight 0.5) for the flipped cells.

    python benchmarks/bench_spatial_context.py --rates 0.1 0.3 --seeds 0 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import napari_annotatability as nat

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# name -> preprocessing the dataset's README asks for
DATASETS = {
    "merfish_lung_tessera": {"normalize": True},
    "visium_dlpfc_steam": {},
    "osmfish_sscortex": {"normalize": True},
    "cycif_scimap": {},
}


def flip(labels: pd.Series, rate: float, rng: np.random.Generator) -> tuple[pd.Series, np.ndarray]:
    classes = np.asarray(labels.cat.categories)
    values = labels.astype(str).to_numpy().copy()
    flipped = rng.random(len(values)) < rate
    for i in np.flatnonzero(flipped):
        values[i] = rng.choice(classes[classes != values[i]])
    return pd.Series(pd.Categorical(values, categories=classes), index=labels.index), flipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        path = DATA / name / f"{name}.h5ad"
        if not path.is_file():
            print(f"skipping {name}: {path} not found")
            continue
        base = ad.read_h5ad(path)
        key = base.uns["label_key"]
        base.obs[key] = base.obs[key].astype("category")
        for rate in args.rates:
            for seed in args.seeds:
                adata = base.copy()
                noisy, flipped = flip(adata.obs[key], rate, np.random.default_rng(seed))
                adata.obs["noisy"] = noisy
                start = time.perf_counter()
                nat.annotate(adata, "noisy", seed=seed, suggest=False, **DATASETS[name])
                seconds = time.perf_counter() - start
                nat.spatial_context(adata, "noisy", k=args.k)
                obs = adata.obs
                row = {"dataset": name, "rate": rate, "seed": seed, "seconds": seconds}
                for score, column in (
                    ("1 - conf", "conf"),
                    ("1 - agreement", "noisy_neighbour_agreement"),
                    ("1 - conf_spatial", "conf_spatial"),
                ):
                    values = obs[column].to_numpy(dtype=float)
                    ok = np.isfinite(values)
                    row[score] = roc_auc_score(flipped[ok], -values[ok])
                rows.append(row)
                print(row, flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby(["dataset", "rate"])[
        ["1 - conf", "1 - agreement", "1 - conf_spatial"]
    ].mean()
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
