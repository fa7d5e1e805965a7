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
ORDER = ["ours", "ours-dynamics", "ours-ref", "reference", "knn", "svm", "rf", "cleanlab"]
BASELINES = ["knn", "svm", "rf", "cleanlab"]
FLAGGING = ["ours", "ours-dynamics", "ours-ref", "reference", "cleanlab"]
#: In the plot (ours-ref lies on the reference).
PLOTTED = ["ours", "ours-dynamics", "reference", "knn", "svm", "rf", "cleanlab"]
STYLES = {
    "ours": "-o",
    "ours-dynamics": "-*",
    "reference": "--s",
    "knn": ":^",
    "svm": ":v",
    "rf": ":x",
    "cleanlab": "-.d",
}


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


def what_ran(frame, key: str) -> list[str]:
    """One row per noise x dataset: its rates, seeds and how many values of ``key`` ran."""
    lines = [f"| noise | dataset | rates | seeds | {key}s |", "|---|---|---|---|---|"]
    for (noise, ds), g in frame.groupby(["noise", "dataset"], sort=False):
        rates = ", ".join(f"{r:.0%}" for r in sorted(g["rate"].unique()))
        seeds = ", ".join(str(s) for s in sorted(g["seed"].unique()))
        lines.append(f"| {noise} | {ds} | {rates} | {seeds} | {g[key].nunique()} |")
    return lines


def dataset_auroc(frame) -> pd.DataFrame:
    """Mean over rates of the seed-averaged AUROC: (noise, dataset) x method."""
    per_rate = frame.groupby(["noise", "dataset", "method", "rate"])["auroc"].mean()
    return per_rate.groupby(level=[0, 1, 2]).mean().unstack("method")


def _summary(frame) -> list[str]:
    methods = _methods(frame)
    table = dataset_auroc(frame)
    baselines = [m for m in BASELINES if m in table]
    lines = [
        "| noise | dataset | " + " | ".join(methods) + " | ours - best baseline |",
        "|---|---|" + "---:|" * (len(methods) + 1),
    ]
    order = list(dict.fromkeys(frame["dataset"]))
    for noise in dict.fromkeys(frame["noise"]):
        for ds in order:
            if (noise, ds) not in table.index:
                continue
            row = table.loc[(noise, ds)]
            cells = [f"{row[m]:.3f}" for m in methods]
            best = max(cells)
            cells = [f"**{c}**" if c == best else c for c in cells]
            gap = row["ours"] - row[baselines].max() if baselines and "ours" in row else np.nan
            lines.append(f"| {noise} | {ds} | " + " | ".join(cells) + f" | {gap:+.3f} |")
        means = table.loc[noise].mean()
        gap = means["ours"] - means[baselines].max() if baselines and "ours" in means else np.nan
        cells = [f"{means[m]:.3f}" for m in methods]
        lines.append(
            f"| {noise} | *mean of {len(table.loc[noise])} datasets* | "
            + " | ".join(cells)
            + f" | {gap:+.3f} |"
        )
    return lines


def _flag_cell(rows) -> str:
    """``flagged / precision / recall``, means over ``rows``; ``-`` if none."""
    if not len(rows) or rows["flagged_fraction"].isna().all():
        return "-"
    means = [rows[c].mean() for c in ("flagged_fraction", "flag_precision", "flag_recall")]
    return " / ".join(f"{v:.2f}" for v in means)


def _calibration(frame) -> list[str]:
    """Flagged fraction against the injected rate, precision and recall, per rate."""
    flaggers = [m for m in FLAGGING if m in set(frame["method"])]
    lines = [
        "| noise | injected | " + " | ".join(f"{m}: flagged / P / R" for m in flaggers) + " |",
        "|---|---:|" + "---:|" * len(flaggers),
    ]
    for (noise, rate), g in frame.groupby(["noise", "rate"], sort=False):
        cells = [_flag_cell(g[g["method"] == m]) for m in flaggers]
        lines.append(f"| {noise} | {rate:.0%} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Over both noises, at 10% and 30% injected (the issue's calibration targets):",
        "",
    ]
    lines += [
        "| method | mean |flagged - injected| | flagged - injected | precision | recall |",
        "|---|---:|---:|---:|---:|",
    ]
    low = frame[frame["rate"].isin([0.1, 0.3])]
    for m in flaggers:
        s = low[low["method"] == m]
        miss = s["flagged_fraction"] - s["rate"]
        lines.append(
            f"| {m} | {miss.abs().mean():.3f} | {miss.mean():+.3f} | "
            f"{s['flag_precision'].mean():.3f} | {s['flag_recall'].mean():.3f} |"
        )
    every = frame[frame["method"] == "ours"]
    lines += [
        "",
        f"`ours` over all rates: precision {every['flag_precision'].mean():.3f}, recall "
        f"{every['flag_recall'].mean():.3f}, flagged - injected "
        f"{(every['flagged_fraction'] - every['rate']).mean():+.3f}.",
    ]
    return lines


def _three_flags(frame) -> list[str]:
    """Easy-to-learn share and purity, Ambiguous share, per dataset (ours)."""
    ours = frame[frame["method"] == "ours"]
    if ours.empty or "easy_fraction" not in ours:
        return ["(no rows of ours)"]
    lines = [
        "| noise | dataset | Easy-to-learn | unflipped among Easy (mean / worst) | Ambiguous |"
        " Hard-to-learn |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (noise, ds), g in ours.groupby(["noise", "dataset"], sort=False):
        lines.append(
            f"| {noise} | {ds} | {g['easy_fraction'].mean():.2f} | "
            f"{g['easy_precision'].mean():.3f} / {g['easy_precision'].min():.3f} | "
            f"{g['ambiguous_fraction'].mean():.2f} | {g['flagged_fraction'].mean():.2f} |"
        )
    return lines


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
        "| dataset | " + " | ".join(f"{m} s" for m in methods) + " | of which evidence s |",
        "|---|" + "---:|" * (len(methods) + 1),
    ]
    for ds, g in frame.groupby("dataset", sort=False):
        cells = [f"{g.loc[g['method'] == m, 'seconds'].median():.1f}" for m in methods]
        evidence = g.loc[g["method"] == "ours", "evidence_seconds"].median()
        cells.append(f"{evidence:.1f}")
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
    per["se"] = per["sd"] / np.sqrt(per["n"])
    worse = per[per["diff"] < 0]
    return [
        f"Paired runs (same flips, same seed): {len(both)} over {len(per)} settings "
        f"(noise x dataset x rate). Mean difference {mine} - reference "
        f"{both['diff'].mean():+.3f} (sd {both['diff'].std():.3f}); `{mine}` below the "
        f"reference in {len(worse)} settings (seed-averaged), "
        f"{int((worse['diff'] < -2 * worse['se']).sum())} of them by more than twice the "
        "standard error of the paired difference.",
    ]


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
    for i, noise in enumerate(noises):
        for j, ds in enumerate(datasets):
            ax = axes[i, j]
            g = frame[(frame["noise"] == noise) & (frame["dataset"] == ds)]
            for m in [m for m in _methods(g) if m in PLOTTED]:
                s = g[g["method"] == m].groupby("rate")["auroc"].mean()
                ax.plot(100 * s.index, s.to_numpy(), STYLES[m], label=m, ms=4)
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


def report(main_csv: Path) -> None:
    if not main_csv.exists():
        return
    frame = pd.read_csv(main_csv)
    # a setting measured twice (re-runs) keeps its latest row
    frame = frame.drop_duplicates(["noise", "dataset", "rate", "seed", "method"], keep="last")
    # tables compare methods on the settings where all of them ran
    setting = ["noise", "dataset", "rate", "seed"]
    n_methods = frame.groupby(setting)["method"].transform("nunique")
    full = frame[n_methods == frame["method"].nunique()]
    lines = [
        "# Quality benchmark: detecting flipped labels on real spatial data",
        "",
        "Generated by `python benchmarks/quality/bench_quality.py` (then `--report`); "
        "protocol and reading in docs/quality.md. AUROC of each method's likely-wrong "
        "score for the flipped cells, all methods on the same flips. `ours`: the mislabel "
        "score of `annotate` at its defaults (label evidence); `ours-dynamics`: `1 - conf` "
        "of the same run (training dynamics); `ours-ref`: our engine at the reference's "
        "settings (`nat.REFERENCE_SETTINGS`); `reference`: the package (50 epochs).",
        "",
        "## Mean AUROC per dataset (mean over rates of the seed-averaged AUROC; best in bold)",
        "",
        *_summary(full),
        "",
        "## The Hard-to-learn flag against the injected rate",
        "",
        "`ours`: the evidence flags (count from noise injection); `ours-dynamics`, "
        "`ours-ref`, `reference`: the training-dynamics flags (noise-injection cut-offs); "
        "`cleanlab`: `find_label_issues`. Means over datasets and seeds.",
        "",
        *_calibration(full),
        "",
        "## Easy-to-learn, Ambiguous and Hard-to-learn (ours)",
        "",
        *_three_flags(full),
        "",
        "## Ours at the reference's settings vs the reference (the same method)",
        "",
        *_paired(frame, "ours-ref"),
        "",
        "## Per rate (AUROC mean ± sd over seeds; flagged fraction / precision / recall)",
        "",
        *_detail(full),
        "",
        "## Wall time per run (median seconds)",
        "",
        "ours / ours-dynamics (one run): training, its noise-injection run and the label "
        "evidence (and its calibration); reference: training and its cut-off run. "
        "Baselines: loading, preprocessing and PCA of the dataset plus the method.",
        "",
        *_timing(full),
        "",
        "## What ran",
        "",
        *_what_ran(frame),
        "",
    ]
    main_csv.with_suffix(".md").write_text("\n".join(lines))
    plot(full)
