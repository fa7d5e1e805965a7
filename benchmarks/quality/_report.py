"""Markdown tables and the AUROC plot of the quality benchmark, from its CSV rows."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np

mpl.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
ORDER = [
    "ours", "ours+spatial", "neighbours", "ours-ref", "reference", "knn", "svm", "rf", "cleanlab"
]  # fmt: skip
FLAGGING = ["ours", "ours-ref", "reference", "cleanlab"]
#: In the plot (ours-ref lies on the reference, neighbours alone is in the tables).
PLOTTED = ["ours", "ours+spatial", "reference", "knn", "svm", "rf", "cleanlab"]


def _methods(frame):
    return [m for m in ORDER if m in set(frame["method"])]


def _ms(values) -> str:
    values = pd.Series(values).dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=0):.3f}"


def _what_ran(frame) -> list[str]:
    lines = ["| noise | dataset | cells x features | classes | method | rates | seeds |"]
    lines.append("|---|---|---|---:|---|---|---|")
    keys = ["noise", "dataset", "method"]
    for (noise, ds, method), g in frame.groupby(keys, sort=False):
        rates = ", ".join(f"{r:.0%}" for r in sorted(g["rate"].unique()))
        seeds = ", ".join(str(s) for s in sorted(g["seed"].unique()))
        first = g.iloc[0]
        lines.append(
            f"| {noise} | {ds} | {first.n_cells:,} x {first.n_features:,} | "
            f"{first.n_classes} | {method} | {rates} | {seeds} |"
        )
    return lines


def _summary(frame) -> list[str]:
    methods = _methods(frame)
    lines = [
        "| noise | dataset | " + " | ".join(methods) + " |",
        "|---|---|" + "---:|" * len(methods),
    ]
    for (noise, ds), g in frame.groupby(["noise", "dataset"], sort=False):
        cells = []
        for m in methods:
            # mean over rates of the seed-averaged AUROC (same settings for every method)
            per_rate = g[g["method"] == m].groupby("rate")["auroc"].mean()
            cells.append(f"{per_rate.mean():.3f}" if len(per_rate) else "-")
        best = max((c for c in cells if c != "-"), default=None)
        cells = [f"**{c}**" if c == best else c for c in cells]
        lines.append(f"| {noise} | {ds} | " + " | ".join(cells) + " |")
    for noise, g in frame.groupby("noise", sort=False):
        per_ds = g.groupby(["dataset", "method", "rate"])["auroc"].mean()
        per_ds = per_ds.groupby(level=[0, 1]).mean().unstack("method")
        cells = [f"{per_ds[m].mean():.3f}" if m in per_ds else "-" for m in methods]
        lines.append(f"| {noise} | *mean of {len(per_ds)} datasets* | " + " | ".join(cells) + " |")
    return lines


def _flag_cell(rows, *, auroc: bool = False) -> str:
    """``flagged / precision / recall`` (``/ AUROC``), means over ``rows``; ``-`` if none."""
    if not len(rows):
        return "-"
    means = [rows[c].mean() for c in ("flagged_fraction", "flag_precision", "flag_recall")]
    text = " / ".join(f"{v:.2f}" for v in means)
    return f"{text} / {rows['auroc'].mean():.3f}" if auroc else text


def _detail(frame) -> list[str]:
    methods = _methods(frame)
    flaggers = [m for m in FLAGGING if m in methods]
    head = ["noise", "dataset", "rate", "seeds"] + [f"AUROC {m}" for m in methods]
    head += [f"flagged / P / R {m}" for m in flaggers]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|---:|" + "---:|" * (len(head) - 4)]
    for (noise, ds, rate), g in frame.groupby(["noise", "dataset", "rate"], sort=False):
        cells = [noise, ds, f"{rate:.0%}", str(g["seed"].nunique())]
        cells += [_ms(g.loc[g["method"] == m, "auroc"]) for m in methods]
        cells += [_flag_cell(g[g["method"] == m]) for m in flaggers]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _timing(frame) -> list[str]:
    methods = _methods(frame)
    lines = [
        "| dataset | " + " | ".join(f"{m} s" for m in methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for ds, g in frame.groupby("dataset", sort=False):
        cells = [f"{g.loc[g['method'] == m, 'seconds'].median():.1f}" for m in methods]
        lines.append(f"| {ds} | " + " | ".join(c.replace("nan", "-") for c in cells) + " |")
    return lines


def _paired(frame, mine: str) -> list[str]:
    """``mine`` against the reference package, run for run (same flips, same seed)."""
    keys = ["noise", "dataset", "rate", "seed"]
    ours = frame[frame["method"] == mine].set_index(keys)["auroc"]
    ref = frame[frame["method"] == "reference"].set_index(keys)["auroc"]
    both = pd.concat({"ours": ours, "reference": ref}, axis=1).dropna()
    if both.empty:
        return ["(no paired runs)"]
    both["diff"] = both["ours"] - both["reference"]
    per = both.groupby(level=[0, 1, 2]).agg(
        ours=("ours", "mean"),
        reference=("reference", "mean"),
        diff=("diff", "mean"),
        sd=("diff", "std"),
        n=("diff", "size"),
    )
    # standard error of the mean paired difference (seeds: different flips and inits)
    per["se"] = per["sd"] / np.sqrt(per["n"])
    worse = per[per["diff"] < 0]
    lines = [
        f"Paired runs (same flips, same seed): {len(both)} over {len(per)} settings "
        f"(noise x dataset x rate). Mean difference {mine} - reference "
        f"{both['diff'].mean():+.3f} (sd {both['diff'].std():.3f}). "
        f"`{mine}` below the reference in {len(worse)} settings (seed-averaged), "
        f"{int((worse['diff'] < -2 * worse['se']).sum())} of them by more than twice the "
        "standard error of the paired difference.",
        "",
        f"| noise | dataset | rate | seeds | {mine} | reference | diff | se |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (noise, ds, rate), r in per.iterrows():
        lines.append(
            f"| {noise} | {ds} | {rate:.0%} | {int(r['n'])} | {r['ours']:.3f} | "
            f"{r['reference']:.3f} | {r['diff']:+.3f} | {r['se']:.3f} |"
        )
    return lines


def plot(frame) -> None:
    noises = [n for n in ("uniform", "confusable") if n in set(frame["noise"])]
    datasets = list(dict.fromkeys(frame["dataset"]))
    fig, axes = plt.subplots(
        len(noises),
        len(datasets),
        figsize=(3.2 * len(datasets), 3.0 * len(noises)),
        squeeze=False,
        sharey=True,
    )
    styles = {
        "ours": "-o",
        "ours+spatial": "-*",
        "reference": "--s",
        "knn": ":^",
        "svm": ":v",
        "rf": ":x",
        "cleanlab": "-.d",
    }
    for i, noise in enumerate(noises):
        for j, ds in enumerate(datasets):
            ax = axes[i, j]
            g = frame[(frame["noise"] == noise) & (frame["dataset"] == ds)]
            for m in [m for m in _methods(g) if m in PLOTTED]:
                s = g[g["method"] == m].groupby("rate")["auroc"].mean()
                ax.plot(100 * s.index, s.to_numpy(), styles[m], label=m, ms=4)
            ax.set_title(f"{ds}\n({noise})", fontsize=8)
            ax.set_xlabel("flipped labels (%)", fontsize=8)
            ax.axhline(0.5, color="grey", lw=0.5)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel("AUROC (flipped cells)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:  # the first panel may lack a method
        h, lab = ax.get_legend_handles_labels()
        if len(lab) > len(labels):
            handles, labels = h, lab
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    IMAGES.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMAGES / "quality_auroc.png", dpi=110)
    plt.close(fig)


def flag_summary(frame, key: str, values) -> list[str]:
    """One row per value of ``key``: AUROC, flagged - injected fraction, flag precision
    and recall (means over the rows) and median seconds."""
    lines = [
        f"| {key} | AUROC | flagged - injected | precision | recall | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for value in values:
        s = frame[frame[key] == value]
        lines.append(
            f"| {value} | {s['auroc'].mean():.3f} | "
            f"{(s['flagged_fraction'] - s['rate']).mean():+.3f} | "
            f"{s['flag_precision'].mean():.3f} | {s['flag_recall'].mean():.3f} | "
            f"{s['seconds'].median():.1f} |"
        )
    return lines


def calibration_report(path: Path) -> None:
    frame = pd.read_csv(path)
    frame = frame.drop_duplicates(["noise", "dataset", "rate", "seed", "epochs"], keep="last")
    lines = [
        "# Quality benchmark: calibration of the Hard-to-learn flag (ours, default settings)",
        "",
        "Generated by `python benchmarks/quality/bench_quality.py --calibration` "
        "(then `--report`). Injected noise is uniform unless the noise column says otherwise; "
        "values are means over seeds. `flagged` is the fraction of all cells flagged "
        "Hard-to-learn; compare it with the injected rate. Precision and recall are "
        "against the injected flips only (errors already in the source labels count as "
        "false positives).",
        "",
        "## What ran",
        "",
        "| noise | dataset | rates | seeds | epochs |",
        "|---|---|---|---|---|",
    ]
    for (noise, ds), g in frame.groupby(["noise", "dataset"], sort=False):
        lines.append(
            f"| {noise} | {ds} | "
            + ", ".join(f"{r:.0%}" for r in sorted(g["rate"].unique()))
            + " | "
            + ", ".join(str(s) for s in sorted(g["seed"].unique()))
            + " | "
            + ", ".join(str(e) for e in sorted(g["epochs"].unique()))
            + " |"
        )
    epochs = sorted(frame["epochs"].unique())
    lines += [
        "",
        "## Flagged fraction vs injected rate, precision and recall by epochs",
        "",
        "| noise | dataset | injected | "
        + " | ".join(f"flagged / P / R / AUROC @{e}" for e in epochs)
        + " |",
        "|---|---|---:|" + "---:|" * len(epochs),
    ]
    for (noise, ds, rate), g in frame.groupby(["noise", "dataset", "rate"], sort=False):
        cells = [_flag_cell(g[g["epochs"] == e], auroc=True) for e in epochs]
        lines.append(f"| {noise} | {ds} | {rate:.0%} | " + " | ".join(cells) + " |")
    lines += ["", "## Mean over datasets and rates", "", *flag_summary(frame, "epochs", epochs)]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


def report(main_csv: Path, calibration_csv: Path) -> None:
    if calibration_csv.exists():
        calibration_report(calibration_csv)
    if not main_csv.exists():
        return
    frame = pd.read_csv(main_csv)
    # a setting measured twice (re-runs) keeps its latest row
    frame = frame.drop_duplicates(["noise", "dataset", "rate", "seed", "method"], keep="last")
    # tables compare methods on the settings where all of them ran; extra seeds run for
    # ours and the reference only go to the paired comparison
    setting = ["noise", "dataset", "rate", "seed"]
    n_methods = frame.groupby(setting)["method"].transform("nunique")
    full = frame[n_methods == frame["method"].nunique()]
    lines = [
        "# Quality benchmark: detecting flipped labels on real spatial data",
        "",
        "Generated by `python benchmarks/quality/bench_quality.py` (then `--report`); "
        "protocol and reading in docs/quality.md. AUROC of each method's likely-wrong "
        "score for the flipped cells, all methods on the same flips. `ours`: our engine "
        "at its defaults (50 epochs, lr auto, hidden widths >= 64); `ours+spatial`: "
        "`1 - conf_spatial` of `nat.spatial_context` (k 10, weight 0.5) on that run; "
        "`neighbours`: `1 -` the tissue neighbours' label agreement alone; `ours-ref`: our "
        "engine at the reference's settings (`nat.REFERENCE_SETTINGS`); `reference`: the "
        "package at its defaults (50 epochs).",
        "",
        "## Mean AUROC per dataset (mean over rates of the seed-averaged AUROC; best in bold)",
        "",
        *_summary(full),
        "",
        "## Ours at the reference's settings vs the reference (the same method)",
        "",
        *_paired(frame, "ours-ref"),
        "",
        "## Ours at our defaults vs the reference",
        "",
        *_paired(frame, "ours"),
        "",
        "## Per rate (AUROC mean ± sd over seeds; flagged fraction / flag precision / recall)",
        "",
        "`ours`, `ours-ref` and `reference`: the Hard-to-learn flag with noise-injection "
        "cut-offs; "
        "`cleanlab`: `find_label_issues`.",
        "",
        *_detail(full),
        "",
        "## Wall time per run (median seconds)",
        "",
        "ours / reference: training plus the cut-off calibration run (two trainings). "
        "Baselines: loading, preprocessing and PCA of the dataset plus the method.",
        "",
        *_timing(full),
        "",
        "## What ran",
        "",
        "Every row below ran in full (all listed methods, rates and seeds), except that "
        "the tables above keep the settings where all methods ran.",
        "",
        *_what_ran(frame),
        "",
    ]
    main_csv.with_suffix(".md").write_text("\n".join(lines))
    plot(full)
