"""Quality benchmark (issues 6 and 11): do the flags find mislabelled cells? Ours (label
evidence; training dynamics) vs the reference package vs kNN / SVM / random-forest /
confident-learning baselines, on the shared real data, all on the same flips.

    python benchmarks/quality/bench_quality.py --quick
    python benchmarks/quality/bench_quality.py --noise uniform --seeds 0 1 2
    python benchmarks/quality/bench_quality.py --noise confusable --seeds 0 1 2
    python benchmarks/quality/bench_quality.py --report     # tables + plot from the CSV

Rows are appended to ``benchmarks/results/quality.csv`` as they are measured, so an
interrupted run keeps what it did; ``--report`` (run after every measuring run too)
writes ``benchmarks/results/quality.md`` and ``docs/images/quality_auroc.png`` from all
rows. See docs/quality.md for the protocol.
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


COLUMNS = [
    "run", "dataset", "n_cells", "n_features", "n_classes", "noise", "rate", "seed",
    "n_flipped", "method", "epochs", "auroc", "flagged_fraction", "flag_precision",
    "flag_recall", "easy_fraction", "easy_precision", "ambiguous_fraction", "seconds",
    "evidence_seconds", "spatial_weight",
]  # fmt: skip


def append(path: Path, row: dict, what: str, columns: list[str] | None = COLUMNS) -> None:
    """Append one measured row to a results CSV (header on the first) and print it.

    ``columns``: the CSV's columns in order, missing ones empty (baselines have no flags);
    ``None``: the row's. ``what``: the method or variant, for the printed line.
    """
    frame = pd.DataFrame([row])
    if columns is not None:
        frame = frame.reindex(columns=columns)
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)
    flags = ""
    if pd.notna(row.get("flagged_fraction", float("nan"))):
        flags = (
            f" flagged {row['flagged_fraction']:.2f} P {row['flag_precision']:.2f} "
            f"R {row['flag_recall']:.2f}"
        )
    print(
        f"{row['dataset']} {row['noise']} {row['rate']:.0%} s{row['seed']} {what}: "
        f"AUROC {row['auroc']:.3f}{flags} {row['seconds']:.1f}s",
        flush=True,
    )


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
        ours = {}
        for method in args.methods:
            extra = {}
            if method in ("ours", "ours-dynamics") and method not in ours:
                ours.update(q.run_ours(st.noisy_ad, st.seed, args.epochs))
            if method in ("ours", "ours-dynamics"):
                score, flags, sec, extra = ours[method]
            elif method == "ours-ref":
                score, flags, sec, extra = q.run_ours(
                    st.noisy_ad, st.seed, args.epochs, reference_settings=True
                )["ours-ref"]
            elif method == "reference":
                score, flags, sec = q.run_reference(st.noisy_ad, st.seed, args.epochs)
            else:
                fn = {
                    "knn": q.run_knn,
                    "svm": q.run_svm,
                    "rf": q.run_rf,
                    "cleanlab": q.run_cleanlab,
                }
                score, flags, sec = fn[method](st.pcs, st.y, st.seed, st.pca_seconds)
            extra = dict(extra)
            easy = extra.pop("easy", None)
            row = {
                **base,
                "method": method,
                "epochs": args.epochs if method in q.TRAINED else "",
                **q.metrics(st.flipped, score, flags),
                **(q.easy_metrics(st.flipped, easy) if easy is not None else {}),
                **extra,
                "seconds": sec,
            }
            append(MAIN_CSV, row, method)


def grid_arguments(description: str, *, rates: list[float]) -> argparse.ArgumentParser:
    """The options every quality study shares: datasets, rates, seeds, noise, threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--datasets", nargs="*", default=None, help="folders in ../shared/data")
    parser.add_argument("--rates", nargs="*", type=float, default=rates)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--noise", choices=["uniform", "confusable"], default="uniform")
    parser.add_argument("--report", action="store_true", help="only write tables and plot")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads (1: the 2-core machine is shared with other jobs)",
    )
    return parser


def set_threads(threads: int) -> None:
    """Torch and BLAS threads of a benchmark process."""
    torch.set_num_threads(threads)
    threadpool_limits(threads)


def run_study(parser: argparse.ArgumentParser, measure, write_report) -> None:
    """Parse the options, measure (unless ``--report``), then write the report."""
    args = parser.parse_args()
    set_threads(args.threads)
    if not args.report:
        RESULTS.mkdir(exist_ok=True)
        measure(args)
    write_report()


def main() -> None:
    parser = grid_arguments(__doc__.splitlines()[0], rates=[0.1, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--methods", nargs="*", default=q.METHODS, choices=q.METHODS)
    parser.add_argument("--epochs", type=int, default=50, help="epochs of the trained methods")
    parser.add_argument(
        "--quick", action="store_true", help="1 seed, rates 10%% and 30%%, the 3 smallest data"
    )
    args = parser.parse_args()
    set_threads(args.threads)
    if args.quick:
        args.seeds = args.seeds[:1]
        args.rates = [0.1, 0.3]
        args.datasets = args.datasets or [d[0] for d in q.DATASETS[:3]]
    if not args.report:
        RESULTS.mkdir(exist_ok=True)
        for folder, why in q.SKIPPED.items():
            print(f"skipped: {folder} ({why})")
        run_grid(args)
    report(MAIN_CSV)


if __name__ == "__main__":
    main()
