"""Label-evidence study (issue 11): the hand-set choices of the mislabel score, chosen on
some datasets and confirmed on the others (leave one dataset out).

The evidence picks its penalty and tissue weight from the data; what is set by hand is
the pull of the noise matrix towards uniform errors (``noise_prior``), whether the
tissue neighbourhood is used at all, and where on the injected errors' scores the error
rate is read (``percentile``). Each setting runs the evidence exactly as ``annotate``
does (the same embedding, the same 5% injected errors of its calibration).

    python benchmarks/quality/bench_evidence.py --noise uniform
    python benchmarks/quality/bench_evidence.py --noise confusable
    python benchmarks/quality/bench_evidence.py --report

Rows go to ``benchmarks/results/quality_evidence.csv``; ``quality_evidence.md`` holds the
tables, the leave-one-dataset-out check included. See docs/quality.md.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings

import _quality as q
import numpy as np
import pandas as pd
from _report import what_ran
from bench_quality import RESULTS, append, grid_arguments, run_study, settings

from napari_annotatability.api import run_steps
from napari_annotatability.core import evidence as ev
from napari_annotatability.core import evidence_calibration
from napari_annotatability.core import flag_calibration as fc
from napari_annotatability.core.scores import EASY, HARD

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
CSV = RESULTS / "quality_evidence.csv"
#: Variants of the evidence: name -> EvidenceParams fields.
VARIANTS = {
    "prior 0": {"noise_prior": 0.0},
    "prior 5": {"noise_prior": 5.0},
    "prior 20": {"noise_prior": 20.0},
    "prior 5, no tissue": {"noise_prior": 5.0, "spatial_neighbours": 0},
    "prior 5, uniform injection": {"noise_prior": 5.0, "injection": "uniform"},
}
PERCENTILES = (10, 25, 50, 75)
DEFAULT = ("prior 5", 25)


def run(x, coords, y, n_classes, seed, fields):
    """The evidence and its calibration runs, as ``annotate`` makes them.

    Returns the main evidence, the pooled calibration scores and masks, the restore
    probability of the Easy-to-learn cut-off, and the seconds taken.
    """
    fields = dict(fields)
    along_noise = fields.pop("injection", "along noise") == "along noise"
    params = dataclasses.replace(ev.EvidenceParams(seed=seed), **fields)
    t0 = time.perf_counter()
    embedding = ev.embed(x, coords, params)
    main = run_steps(ev.label_evidence(embedding, y, n_classes, params))
    check = run_steps(
        evidence_calibration.calibration_scores(
            embedding, y, n_classes, params, main, seed=seed + 1, along_noise=along_noise
        )
    )
    injection, restore = (check.scores, check.injected), check.restore
    return main, injection, restore, time.perf_counter() - t0


def measure(args) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for st in settings(args.datasets, args.noise, args.rates, args.seeds):
        x = st.noisy_ad.X
        coords = st.noisy_ad.obsm["spatial"]
        for name in args.variants:
            main, injection, restore, sec = run(
                x, coords, st.y, st.classes.size, st.seed, VARIANTS[name]
            )
            for pct in PERCENTILES:
                cut = fc.calibrate(main.mislabel_score, injection, percentile=pct, restore=restore)
                flags = np.asarray(fc.evidence_flags(main.mislabel_score, main.ambiguity, cut))
                row = {
                    "run": stamp,
                    "dataset": st.folder,
                    "noise": args.noise,
                    "rate": st.rate,
                    "seed": st.seed,
                    "variant": name,
                    "percentile": pct,
                    **q.metrics(st.flipped, main.mislabel_score, flags == HARD),
                    **q.easy_metrics(st.flipped, flags == EASY),
                    "penalty": main.penalty,
                    "spatial_weight": main.spatial_weight,
                    "seconds": sec,
                }
                append(CSV, row, f"{name}, percentile {pct}", columns=None)


def _choice_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and (variant, percentile): mean AUROC (both noises), mean
    |flagged - injected| at 10% and 30%, precision and recall, Easy precision."""
    frame = frame.assign(miss=(frame["flagged_fraction"] - frame["rate"]).abs())
    low = frame[frame["rate"].isin([0.1, 0.3])]
    keys = ["dataset", "variant", "percentile"]
    table = frame.groupby(keys)[["auroc", "flag_precision", "flag_recall"]].mean()
    table["miss"] = low.groupby(keys)["miss"].mean()
    table["easy_precision"] = frame.groupby(keys)["easy_precision"].min()
    return table


def _choose(table: pd.DataFrame) -> tuple[str, int]:
    """The variant with the best mean AUROC, then its percentile closest in count."""
    means = table.groupby(level=["variant", "percentile"]).mean()
    variant = means["auroc"].groupby(level="variant").mean().idxmax()
    miss = means.loc[variant, "miss"]
    pct = miss.idxmin() if miss.notna().any() else means.loc[variant].index[0]
    return variant, int(pct)


def _lodo_targets(frame: pd.DataFrame, table: pd.DataFrame, datasets: list[str]) -> list[str]:
    """Mean AUROC, count miss, precision and recall: defaults vs leave-one-dataset-out."""
    frame = frame.assign(miss=(frame["flagged_fraction"] - frame["rate"]).abs())
    choice = {ds: _choose(table.drop(index=ds, level="dataset")) for ds in datasets}
    lines = [
        "| noise | choice | AUROC | miss at 10% and 30% | precision | recall |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for noise, g in frame.groupby("noise", sort=False):
        for name, pick in (("defaults", dict.fromkeys(datasets, DEFAULT)), ("LODO", choice)):
            rows = pd.concat(
                g[
                    (g["dataset"] == ds)
                    & (g["variant"] == pick[ds][0])
                    & (g["percentile"] == pick[ds][1])
                ]
                for ds in datasets
            )
            per = rows.groupby("dataset")
            low = rows[rows["rate"].isin([0.1, 0.3])].groupby("dataset")["miss"].mean()
            lines.append(
                f"| {noise} | {name} | {per['auroc'].mean().mean():.3f} | {low.mean():.3f} | "
                f"{per['flag_precision'].mean().mean():.3f} | "
                f"{per['flag_recall'].mean().mean():.3f} |"
            )
    return lines


def report() -> None:
    frame = pd.read_csv(CSV)
    frame = frame.drop_duplicates(
        ["noise", "dataset", "rate", "seed", "variant", "percentile"], keep="last"
    )
    table = _choice_table(frame)
    datasets = list(dict.fromkeys(frame["dataset"]))
    lines = [
        "# Quality benchmark: the hand-set choices of the label evidence",
        "",
        "Generated by `python benchmarks/quality/bench_evidence.py` (then `--report`). "
        "Each variant runs the evidence as `annotate` does, on the flips of the quality "
        "benchmark. `miss`: mean |flagged fraction - injected rate| at 10% and 30%; "
        "P / R: precision / recall of Hard-to-learn; Easy precision: the lowest share of "
        "unflipped cells among the Easy-to-learn ones over all settings.",
        "",
        "## All datasets (means over datasets, both noises, all rates and seeds)",
        "",
        "| variant | percentile | AUROC | miss | P | R | worst Easy precision |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    means = table.groupby(level=["variant", "percentile"]).mean()
    worst = table.groupby(level=["variant", "percentile"])["easy_precision"].min()
    for (variant, pct), r in means.iterrows():
        lines.append(
            f"| {variant} | {pct} | {r['auroc']:.3f} | {r['miss']:.3f} | "
            f"{r['flag_precision']:.3f} | {r['flag_recall']:.3f} | "
            f"{worst[(variant, pct)]:.3f} |"
        )
    chosen = _choose(table)
    lines += [
        "",
        f"Chosen on all five datasets: **{chosen[0]}, percentile {chosen[1]}** "
        f"(the default: {DEFAULT[0]}, percentile {DEFAULT[1]}).",
        "",
        "## Leave one dataset out",
        "",
        "For each dataset, the choice made on the other four, and that choice's result on "
        "the held-out dataset next to the default's.",
        "",
        "| held out | chosen on the others | AUROC (held out) | miss | AUROC default | "
        "miss default |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for ds in datasets if len(datasets) > 1 else []:
        others = table.drop(index=ds, level="dataset")
        variant, pct = _choose(others)
        got = table.loc[(ds, variant, pct)]
        base = table.loc[(ds, *DEFAULT)]
        lines.append(
            f"| {ds} | {variant}, {pct} | {got['auroc']:.3f} | {got['miss']:.3f} | "
            f"{base['auroc']:.3f} | {base['miss']:.3f} |"
        )
    lines += [
        "",
        "### The targets with every dataset scored by the choice made without it",
        "",
        "Means over the five datasets (each dataset: mean over rates and seeds), per noise.",
        "",
        *_lodo_targets(frame, table, datasets),
        "",
        "## Per dataset (AUROC / miss, the default percentile)",
        "",
        "| dataset | " + " | ".join(VARIANTS) + " |",
        "|---|" + "---:|" * len(VARIANTS),
    ]
    for ds in datasets:
        cells = []
        for variant in VARIANTS:
            key = (ds, variant, DEFAULT[1])
            cells.append(
                f"{table.loc[key, 'auroc']:.3f} / {table.loc[key, 'miss']:.3f}"
                if key in table.index
                else "-"
            )
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    lines += ["", "## What ran", "", *what_ran(frame, "variant")]
    CSV.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = grid_arguments(__doc__.splitlines()[0], rates=[0.1, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    run_study(parser, measure, report)


if __name__ == "__main__":
    main()
