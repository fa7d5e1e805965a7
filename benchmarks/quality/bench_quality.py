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


def datasets(names):
    for folder, key, how in q.DATASETS:
        if names and folder not in names:
            continue
        if not (q.DATA / folder).is_dir():
            print(f"missing: {folder}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        adata, pcs = q.load(folder, how)
        pca_seconds = time.perf_counter() - t0  # load + preprocessing + PCA
        classes = np.asarray(sorted(adata.obs[key].astype(str).unique()), dtype=object)
        codes = np.searchsorted(classes, adata.obs[key].astype(str).to_numpy())
        yield folder, adata, pcs, pca_seconds, classes, codes


def run_grid(args) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for folder, adata, pcs, pca_s, classes, codes in datasets(args.datasets):
        n_classes = classes.size
        weights = q.confusion_weights(pcs, codes, n_classes) if args.noise == "confusable" else None
        for rate in args.rates:
            for seed in args.seeds:
                noisy, flipped = q.flip(codes, n_classes, rate, 1000 * seed + 17, weights)
                noisy_ad = q.noisy_adata(adata, classes, noisy)
                _, y = np.unique(noisy, return_inverse=True)
                base = {
                    "run": stamp,
                    "dataset": folder,
                    "n_cells": adata.n_obs,
                    "n_features": adata.n_vars,
                    "n_classes": n_classes,
                    "noise": args.noise,
                    "rate": rate,
                    "seed": seed,
                    "n_flipped": int(flipped.sum()),
                }
                for method in args.methods:
                    if method == "ours":
                        score, flags, sec = q.run_ours(noisy_ad, seed, args.epochs[0])
                    elif method == "reference":
                        score, flags, sec = q.run_reference(noisy_ad, seed, args.epochs[0])
                    else:
                        fn = {"knn": q.run_knn, "svm": q.run_svm, "cleanlab": q.run_cleanlab}
                        score, flags, sec = fn[method](pcs, y, seed, pca_s)
                    row = {
                        **base,
                        "method": method,
                        "epochs": args.epochs[0] if method in ("ours", "reference") else "",
                        **q.metrics(flipped, score, flags),
                        "seconds": sec,
                    }
                    append(MAIN_CSV, row)
                    print(
                        f"{folder} {args.noise} {rate:.0%} s{seed} {method}: "
                        f"AUROC {row['auroc']:.3f} "
                        f"P {row.get('flag_precision', float('nan')):.2f} "
                        f"R {row.get('flag_recall', float('nan')):.2f} {sec:.1f}s",
                        flush=True,
                    )


def run_calibration(args) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for folder, adata, pcs, _, classes, codes in datasets(args.datasets):
        weights = (
            q.confusion_weights(pcs, codes, classes.size) if args.noise == "confusable" else None
        )
        for rate in args.rates:
            for seed in args.seeds:
                noisy, flipped = q.flip(codes, classes.size, rate, 1000 * seed + 17, weights)
                noisy_ad = q.noisy_adata(adata, classes, noisy)
                for epochs in args.epochs:
                    score, flags, sec = q.run_ours(noisy_ad, seed, epochs)
                    row = {
                        "run": stamp,
                        "dataset": folder,
                        "noise": args.noise,
                        "rate": rate,
                        "seed": seed,
                        "epochs": epochs,
                        **q.metrics(flipped, score, flags),
                        "seconds": sec,
                    }
                    append(CALIBRATION_CSV, row)
                    print(
                        f"{folder} {rate:.0%} s{seed} {epochs} ep: flagged "
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
