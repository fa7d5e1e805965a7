"""napari layer building, colour switching and redraws at 100k and 1M cells.

Run by hand under a display (software rendering here: Xvfb + Mesa llvmpipe):

    xvfb-run -a -s "-screen 0 1400x900x24" python benchmarks/bench_layers.py --sizes 100000 1000000

Each step is timed on the main thread as a person would wait for it; "draw" forces a
repaint of the canvas (a screenshot), which is where software OpenGL spends its time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability._napari.layers import cells_layer
from napari_annotatability._napari.selection import select_cells
from napari_annotatability._napari.viewer_sync import show_results, show_running_confidence
from napari_annotatability.core.scores import FLAG_CATEGORIES


def scored_tissue(n: int, n_classes: int = 12, seed: int = 0) -> AnnData:
    """n cells on a square tissue with labels, scores, flags and some suggestions."""
    rng = np.random.default_rng(seed)
    side = np.sqrt(n) * 10
    xy = rng.uniform(0, side, (n, 2))
    classes = np.array([f"type {i}" for i in range(n_classes)])
    labels = classes[np.minimum((xy[:, 1] / side * n_classes).astype(int), n_classes - 1)]
    conf = rng.beta(4, 2, n)
    var = rng.uniform(0, 0.35, n)
    flags = np.where(conf < 0.3, FLAG_CATEGORIES[2], np.where(conf > 0.9, *FLAG_CATEGORIES[:2]))
    suggested = np.where(flags == FLAG_CATEGORIES[2], rng.choice(classes, n), None)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(labels),
            "cell_type_conf": conf,
            "cell_type_var": var,
            "cell_type_flag": pd.Categorical(flags, categories=list(FLAG_CATEGORIES)),
            "cell_type_suggested": pd.Categorical(suggested, categories=list(classes)),
        },
        index=[f"cell{i}" for i in range(n)],
    )
    return AnnData(obs=obs, obsm={"spatial": xy})


def timed(results: list, n: int, step: str, func, *args):
    start = time.perf_counter()
    out = func(*args)
    seconds = time.perf_counter() - start
    results.append({"cells": n, "step": step, "seconds": round(seconds, 2)})
    print(f"{n:>9,} {step:<45} {seconds:7.2f} s", flush=True)
    return out


def run(n: int, results: list) -> None:
    import napari

    adata = scored_tissue(n)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    app = napari.qt.get_qapp()

    def draw():
        app.processEvents()
        viewer.screenshot(canvas_only=True, flash=False)

    data = timed(
        results, n, "cells layer data (features, colours)", cells_layer, adata, "cell_type"
    )
    source = timed(results, n, "add cells layer", lambda: viewer.add_points(data[0], **data[1]))
    timed(results, n, "first draw (1 visible layer)", draw)
    timed(results, n, "results layers (4, flags visible)", show_results, viewer, source)
    timed(results, n, "results again (replaced in place)", show_results, viewer, source)
    source.visible = True
    timed(results, n, "draw (labels + flags visible)", draw)
    source.visible = False
    timed(results, n, "draw (flags only, the default)", draw)

    flags = next(layer for layer in viewer.layers if layer.metadata.get("role") == "flags")
    conf = next(layer for layer in viewer.layers if layer.metadata.get("role") == "confidence")

    def show_confidence_instead():
        flags.visible, conf.visible = False, True
        draw()

    timed(results, n, "show confidence instead of flags (+ draw)", show_confidence_instead)
    conf.visible, flags.visible = False, True
    running = np.random.default_rng(1).uniform(0, 1, n)
    timed(
        results,
        n,
        "running-confidence layer (create)",
        show_running_confidence,
        viewer,
        source,
        running,
    )
    timed(
        results,
        n,
        "running-confidence layer (update)",
        show_running_confidence,
        viewer,
        source,
        running[::-1].copy(),
    )
    chosen = np.flatnonzero(adata.obs["cell_type_conf"].to_numpy() < 0.3)
    timed(
        results,
        n,
        f"select {chosen.size:,} cells on every layer",
        select_cells,
        viewer,
        adata,
        chosen,
    )
    timed(results, n, "draw with selection", draw)

    from napari_annotatability._qt.data_map import DataMapWidget

    data_map = timed(results, n, "data map widget (scatter of all cells)", DataMapWidget, viewer)
    timed(results, n, "data map draw", lambda: (data_map.canvas.draw(), app.processEvents()))
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--out", default=None, help="also write a markdown table here")
    args = parser.parse_args()
    results: list = []
    for n in args.sizes:
        run(n, results)
    sizes = list(dict.fromkeys(r["cells"] for r in results))
    steps = list(dict.fromkeys(_generic(r["step"]) for r in results))
    seconds = {(_generic(r["step"]), r["cells"]): r["seconds"] for r in results}
    lines = ["| step | " + " | ".join(f"{n:,} cells (s)" for n in sizes) + " |"]
    lines.append("|---|" + "---:|" * len(sizes))
    for step in steps:
        row = " | ".join(f"{seconds.get((step, n), float('nan')):.2f}" for n in sizes)
        lines.append(f"| {step} | {row} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(table + "\n")


def _generic(step: str) -> str:
    """The step's name without the cell count it mentions ("select 3,076 cells ...")."""
    words = step.split()
    return " ".join("the low-confidence" if w.replace(",", "").isdigit() else w for w in words)


if __name__ == "__main__":
    main()
