"""Agreement with the reference package on real data: conf correlation and flagged fractions.

    python benchmarks/bench_agreement.py > benchmarks/results/agreement.md

For each dataset: 50 epochs, seeds 0..S-1 for both implementations. Reports the mean
Spearman correlation of ``conf`` between ours and the reference (pairs of different seeds), of
the reference with itself across seeds, and of ours with itself; then the flagged
fractions of each seed (reference: its main run then its ``find_cutoff_paramter`` run, as
a user runs them, with the METHOD flag rules; ours: ``annotate``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import warnings

import numpy as np
import torch
from _common import DATA, REAL_DATASETS, load_real, machine, ours, reference
from scipy.stats import spearmanr

import napari_annotatability as nat
from napari_annotatability.core.scores import FLAG_CATEGORIES, HARD, Cutoffs, assign_flags

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
DATASETS = REAL_DATASETS
load = load_real


def mean_corr(pairs):
    return float(np.mean([spearmanr(a, b).statistic for a, b in pairs]))


def reference_flags(adata, key, seed, epochs):
    """The reference as a user runs it: one seed, the main run, then its calibration run."""
    from Annotatability import models

    conf, var, _ = reference(adata, key, epochs, seed=seed)  # seeds torch and numpy
    with contextlib.redirect_stdout(io.StringIO()):
        cut_conf, cut_var = models.find_cutoff_paramter(
            adata, key, device=torch.device("cpu"), epoch_num=epochs
        )
    cut = Cutoffs(float(cut_conf), float(cut_var), 90, 0.05, 0)
    return assign_flags(conf, var, cut)


def hard_fraction(runs):
    values = [np.mean(np.asarray(flags) == HARD) for flags in runs]
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def fractions(flags):
    flags = np.asarray(flags)
    return " / ".join(f"{np.mean(flags == f):.2f}" for f in FLAG_CATEGORIES)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    print(
        f"{args.epochs} epochs, seeds 0..{args.seeds - 1}, reference defaults otherwise. "
        "Flag fractions are Easy / Ambiguous / Hard; Hard as mean ± sd over seeds.\n"
    )
    print(
        "| dataset | cells x features | Spearman ours-ref | ref-ref | ours-ours | "
        "ref s (run) | ours s (run) | speed-up | flags ref (seed 0) | flags ours (seed 0) | "
        "Hard ref (all seeds) | Hard ours (all seeds) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
    for folder, key, how in DATASETS:
        if not (DATA / folder).is_dir():
            continue
        adata = load(folder, how)
        adata.obs[key] = adata.obs[key].astype(str).astype("category")
        ref_runs, our_runs, ref_t, our_t = [], [], [], []
        for seed in range(args.seeds):
            conf, var, t = reference(adata, key, args.epochs, seed=seed)
            ref_runs.append((conf, var))
            ref_t.append(t)
            conf, var, t, _ = ours(adata, key, args.epochs, seed=seed)
            our_runs.append((conf, var))
            our_t.append(t)
        # different seeds only: with one seed both start from the same initial weights
        cross = mean_corr(
            [(o[0], r[0]) for i, o in enumerate(our_runs) for j, r in enumerate(ref_runs) if i != j]
        )
        ref_self = mean_corr([(a[0], b[0]) for a, b in itertools.combinations(ref_runs, 2)])
        our_self = mean_corr([(a[0], b[0]) for a, b in itertools.combinations(our_runs, 2)])
        ref_flags = [reference_flags(adata, key, seed, args.epochs) for seed in range(args.seeds)]
        our_flags = [
            nat.annotate(
                adata,
                key,
                epochs=args.epochs,
                suggest=False,
                device="cpu",
                copy=True,
                seed=seed,
                **nat.REFERENCE_SETTINGS,  # the same hyper-parameters as the reference
            ).obs[f"{key}_flag"]
            for seed in range(args.seeds)
        ]
        print(
            f"| {folder} | {adata.n_obs:,} x {adata.n_vars:,} | {cross:.3f} | {ref_self:.3f} | "
            f"{our_self:.3f} | {np.mean(ref_t):.1f} | {np.mean(our_t):.1f} | "
            f"{np.mean(ref_t) / np.mean(our_t):.1f}x | {fractions(ref_flags[0])} | "
            f"{fractions(our_flags[0])} | {hard_fraction(ref_flags)} | "
            f"{hard_fraction(our_flags)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
