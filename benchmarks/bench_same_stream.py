"""Same randomness, same result: our engine fed the reference's sampled cells.

The reference draws its initial weights from torch's global generator after
``torch.manual_seed(seed)`` (as ours does, in a forked state) and then each epoch's cells
from a ``WeightedRandomSampler`` on the same global generator. This script replays those
draws (the reference's own sampler and ``DataLoader``), feeds them to our engine at the
reference's settings, and compares the confidences with the reference's run: any
difference beyond float rounding would be a difference of method, not of luck.

    python benchmarks/bench_same_stream.py --dataset st_mob_stdeconvolve --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent / "quality"))
from _common import REAL_DATASETS, reference
from _quality import flip, load, noisy_adata

from napari_annotatability.core import dynamics
from napari_annotatability.core.dynamics import REFERENCE_TRAINING, TrainingParams

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)


def reference_orders(adata, seed: int, epochs: int) -> list[torch.Tensor]:
    """The cells the reference trains on in each epoch, for this seed."""
    from Annotatability import models

    n_classes = adata.obs["noisy"].nunique()
    torch.manual_seed(seed)
    models.Net(adata.n_vars, n_classes)  # consumes the generator as the reference does
    sampler = models.create_weighted_sampler(adata, "noisy")
    loader = DataLoader(list(range(adata.n_obs)), batch_size=256, sampler=sampler)
    return [torch.cat(list(loader)) for _ in range(epochs)]


def ours_on(adata, seed: int, epochs: int, orders: list[torch.Tensor]) -> np.ndarray:
    """Our confidences when each epoch draws the given cells."""
    replay = iter(orders)
    original = dynamics.EpochSampler.draw
    dynamics.EpochSampler.draw = lambda self: next(replay)
    try:
        codes = adata.obs["noisy"].cat.codes.to_numpy().astype(np.int64)
        n_classes = len(adata.obs["noisy"].cat.categories)
        params = TrainingParams(epochs=epochs, seed=seed, **REFERENCE_TRAINING)
        steps = dynamics.training_dynamics(adata.X, codes, n_classes, params, device="cpu")
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                return stop.value.probabilities.mean(axis=0)
    finally:
        dynamics.EpochSampler.draw = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="st_mob_stdeconvolve")
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    folder, key, how = next(d for d in REAL_DATASETS if d[0] == args.dataset)
    data, _ = load(folder, how)
    classes = np.asarray(sorted(data.obs[key].astype(str).unique()), dtype=object)
    codes = np.searchsorted(classes, data.obs[key].astype(str).to_numpy())
    rows = []
    for seed in args.seeds:
        noisy, flipped = flip(codes, classes.size, args.rate, 1000 * seed + 17)
        adata = noisy_adata(data, classes, noisy)
        same = ours_on(adata, seed, args.epochs, reference_orders(adata, seed, args.epochs))
        ref, _, _ = reference(adata, "noisy", args.epochs, seed=seed)
        rows.append(
            {
                "seed": seed,
                "max |conf ours - conf ref|": float(np.abs(same - ref).max()),
                "AUROC ours": roc_auc_score(flipped, 1 - same),
                "AUROC ref": roc_auc_score(flipped, 1 - ref),
            }
        )
        logging.getLogger(__name__).info("%s", rows[-1])
    print(f"{folder}, {args.rate:.0%} uniform flips, {args.epochs} epochs")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
