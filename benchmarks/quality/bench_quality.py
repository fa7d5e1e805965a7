"""Quality benchmark (issue 6): do the flags find mislabelled cells? Ours vs the
reference package vs kNN / SVM / confident-learning baselines, on the shared real data.

    python benchmarks/quality/bench_quality.py --quick
    python benchmarks/quality/bench_quality.py --noise uniform --seeds 0 1 2
    python benchmarks/quality/bench_quality.py --noise confusable --seeds 0
    python benchmarks/quality/bench_quality.py --calibration --epochs 20 50 100
    python benchmarks/quality/bench_quality.py --report     # tables + plot from the CSVs

Rows are appended to ``benchmarks/results/quality.csv`` (``quality_calibration.csv``)
as they are measured, so an interrupted run keeps what it did; ``--report`` (run after
every measuring run too) writes ``benchmarks/results/quality.md`` /
``quality_calibration.md`` and ``docs/images/quality_auroc.png`` from all rows.
See docs/quality.md for the protocol.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import _quality as q
import numpy as np
import pandas as pd
import torch
from _report import report
from threadpoolctl import threadpool_limits

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
RESULTS = Path(__file__).resolve().parents[1] / "results"
MAIN_CSV = RESULTS / "quality.csv"
CALIBRATION_CSV = RESULTS / "quality_calibration.csv"


COLUMNS = [
    "run", "dataset", "n_cells", "n_features", "n_classes", "noise", "rate", "seed",
    "n_flipped", "method", "epochs", "auroc", "flagged_fraction", "flag_precision",
    "flag_recall", "seconds",
]  # fmt: skip


def append(path: Path, row: dict) -> None:
    frame = pd.DataFrame([row])
    if path != CALIBRATION_CSV:
        frame = frame.reindex(columns=COLUMNS)  # fixed columns: baselines have no flags
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)


@dataclass
class Setting:
    """One dataset x noise x rate x seed: the data and its flipped labels."""

    folder: str
    adata: object  # AnnData, preprocessed
    pcs: np.ndarray
    pca_seconds: float  # load + preprocessing + PCA
    classes: np.ndarray
    rate: float
    seed: int
    flipped: np.ndarray  # cells whose label was flipped
    y: np.ndarray  # noisy class codes
    noisy_ad: object  # X + tissue coordinates + obs["noisy"]


def settings(names, noise: str, rates, seeds):
    """Every requested setting; seed ``s`` flips with ``default_rng(1000 s + 17)``."""
    for folder, key, how in q.DATASETS:
        if names and folder not in names:
            continue
        if not q.available(folder):
            print(f"missing: {folder}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        adata, pcs = q.load(folder, how)
        pca_seconds = time.perf_counter() - t0
        classes = np.asarray(sorted(adata.obs[key].astype(str).unique()), dtype=object)
        codes = np.searchsorted(classes, adata.obs[key].astype(str).to_numpy())
        weights = q.confusion_weights(pcs, codes, classes.size) if noise == "confusable" else None
        for rate in rates:
            for seed in seeds:
                noisy, flipped = q.flip(codes, classes.size, rate, 1000 * seed + 17, weights)
                yield Setting(
                    folder,
                    adata,
                    pcs,
                    pca_seconds,
                    classes,
                    rate,
                    seed,
                    flipped,
                    np.unique(noisy, return_inverse=True)[1],
                    q.noisy_adata(adata, classes, noisy),
                )


def run_grid(args) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for st in settings(args.datasets, args.noise, args.rates, args.seeds):
        base = {
            "run": stamp,
            "dataset": st.folder,
            "n_cells": st.adata.n_obs,
            "n_features": st.adata.n_vars,
            "n_classes": st.classes.size,
            "noise": args.noise,
            "rate": st.rate,
            "seed": st.seed,
            "n_flipped": int(st.flipped.sum()),
        }
        spatial = {}
        for method in args.methods:
            if method in ("ours", "ours-ref"):
                score, flags, sec, audited = q.run_ours(
                    st.noisy_ad, st.seed, args.epochs[0], reference_settings=method == "ours-ref"
                )
                if method == "ours":
                    spatial = q.run_spatial(audited, sec)
            elif method in q.SPATIAL:
                score, flags, sec = spatial[method]  # KeyError: needs "ours" first
            elif method == "reference":
                score, flags, sec = q.run_reference(st.noisy_ad, st.seed, args.epochs[0])
            else:
                fn = {
                    "knn": q.run_knn,
                    "svm": q.run_svm,
                    "rf": q.run_rf,
                    "cleanlab": q.run_cleanlab,
                }
                score, flags, sec = fn[method](st.pcs, st.y, st.seed, st.pca_seconds)
            row = {
                **base,
                "method": method,
                "epochs": args.epochs[0] if method in q.TRAINED else "",
                **q.metrics(st.flipped, score, flags),
                "seconds": sec,
            }
            append(MAIN_CSV, row)
            print(
                f"{st.folder} {args.noise} {st.rate:.0%} s{st.seed} {method}: "
                f"AUROC {row['auroc']:.3f} "
                f"P {row.get('flag_precision', float('nan')):.2f} "
                f"R {row.get('flag_recall', float('nan')):.2f} {sec:.1f}s",
                flush=True,
            )


def run_calibration(args) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for st in settings(args.datasets, args.noise, args.rates, args.seeds):
        for epochs in args.epochs:
            score, flags, sec, _ = q.run_ours(st.noisy_ad, st.seed, epochs)
            row = {
                "run": stamp,
                "dataset": st.folder,
                "noise": args.noise,
                "rate": st.rate,
                "seed": st.seed,
                "epochs": epochs,
                **q.metrics(st.flipped, score, flags),
                "seconds": sec,
            }
            append(CALIBRATION_CSV, row)
            print(
                f"{st.folder} {st.rate:.0%} s{st.seed} {epochs} ep: flagged "
                f"{row['flagged_fraction']:.2f} P {row['flag_precision']:.2f} "
                f"R {row['flag_recall']:.2f} AUROC {row['auroc']:.3f} {sec:.1f}s",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=None, help="folders in ../shared/data")
    parser.add_argument("--rates", nargs="*", type=float, default=[0.1, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=q.METHODS, choices=q.METHODS)
    parser.add_argument("--noise", choices=["uniform", "confusable"], default="uniform")
    parser.add_argument(
        "--epochs", nargs="*", type=int, default=None, help="default 50; 20 50 100 calibration"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 seed, rates 10%% and 30%%, the 3 smallest data"
    )
    parser.add_argument("--calibration", action="store_true", help="flag calibration mode")
    parser.add_argument("--report", action="store_true", help="only write tables and plot")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads (1: the 2-core machine is shared with other jobs)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    if args.epochs is None:
        args.epochs = [20, 50, 100] if args.calibration else [50]
    if args.quick:
        args.seeds = args.seeds[:1]
        args.rates = [0.1, 0.3]
        args.datasets = args.datasets or [d[0] for d in q.DATASETS[:3]]
    if not args.report:
        RESULTS.mkdir(exist_ok=True)
        for folder, why in q.SKIPPED.items():
            print(f"skipped: {folder} ({why})")
        run_calibration(args) if args.calibration else run_grid(args)
    report(MAIN_CSV, CALIBRATION_CSV)


if __name__ == "__main__":
    main()
