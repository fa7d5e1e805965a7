"""napari layer building, colour switching, pan/zoom frames and redraws at 100k and 1M cells.

Run by hand under a display (software rendering here: Xvfb + Mesa llvmpipe):

    xvfb-run -a -s "-screen 0 1400x900x24" python benchmarks/bench_layers.py \
        --sizes 100000 1000000 --screenshot docs/images/large_section.png

Each step is timed on the main thread as a person would wait for it; "draw" forces a
repaint of the canvas (a screenshot), which is where software OpenGL spends its time.
The viewer has the plugin's level of detail (``_qt/overview.py``): an overview image
when more than ``MAX_POINTS`` cells are in view, the real points of the view otherwise.
Frame steps give the median of several frames.
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
from napari_annotatability._qt.overview import install_overview
from napari_annotatability.core.scores import FLAG_CATEGORIES


def scored_tissue(n: int, n_classes: int = 12, seed: int = 0) -> AnnData:
    """n cells on a square tissue with labels, scores, flags and some suggestions."""
    rng = np.random.default_rng(seed)
    side = np.sqrt(n) * 10
    xy = rng.uniform(0, side, (n, 2))
    classes = np.array([f"type {i}" for i in range(n_classes)])
    labels = classes[np.minimum((xy[:, 1] / side * n_classes).astype(int), n_classes - 1)]
    # low confidence near the boundaries between the bands, as mislabelled cells would be
    band = xy[:, 1] / side * n_classes
    edge = np.abs(band - np.round(band))  # 0 at a boundary, 0.5 mid-band
    conf = rng.beta(4, 2, n) * np.tanh(edge / 0.08) ** 0.5
    var = rng.uniform(0, 0.35, n)
    flags = np.where(conf < 0.3, FLAG_CATEGORIES[2], np.where(conf > 0.6, *FLAG_CATEGORIES[:2]))
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


def frames(results: list, n: int, step: str, moves, draw) -> None:
    """Median seconds of camera moves, each followed by a drawn frame."""
    seconds = []
    for move in moves:
        start = time.perf_counter()
        move()
        draw()
        seconds.append(time.perf_counter() - start)
    median = float(np.median(seconds))
    results.append({"cells": n, "step": step, "seconds": round(median, 3)})
    print(f"{n:>9,} {step:<45} {median:7.3f} s (median of {len(seconds)})", flush=True)


def run(n: int, results: list, screenshot: str | None = None) -> None:
    import napari

    adata = scored_tissue(n)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    app = napari.qt.get_qapp()
    lod = install_overview(viewer)

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
    draw()

    camera = viewer.scene.camera
    viewer.reset_view()
    centre, zoom = np.asarray(camera.center), camera.zoom
    side = np.sqrt(n) * 10  # the tissue's side (scored_tissue)

    def pan(dx):
        return lambda: setattr(camera, "center", tuple(centre + np.array([0, dx, dx])))

    def zoom_to(factor):
        return lambda: setattr(camera, "zoom", zoom * factor)

    frames(
        results,
        n,
        "pan, full view (per frame)",
        [pan(side * d) for d in (0.02, 0.04, 0.06, 0.08, 0.1)],
        draw,
    )
    frames(
        results,
        n,
        "zoom, full view (per frame)",
        [zoom_to(f) for f in (1.1, 1.2, 1.3, 1.2, 1.1)],
        draw,
    )
    deep = np.sqrt(n / 6_000)  # about 9,500 cells in the (wider than high) view
    timed(results, n, "zoom in to real points (+ draw)", lambda: (zoom_to(deep)(), draw()))
    print(
        f"          drawn points: {len(flags._view_indices):,}; "
        f"overview shown: {lod.is_overview(flags)}"
    )
    frames(
        results,
        n,
        "pan, zoomed in (per frame)",
        [pan(side * d / deep) for d in (0.01, 0.02, 0.03, 0.04, 0.05)],
        draw,
    )
    shown = np.asarray(flags._view_indices)
    cell = int(shown[len(shown) // 2]) if shown.size else 0
    hovered = timed(
        results,
        n,
        "hover a cell, zoomed in (value)",
        lambda: flags.get_value(flags.data[cell], world=True),
    )
    assert hovered == cell, (hovered, cell)
    if screenshot:  # zoomed in (real points), then the whole section (the overview)
        zoomed = screenshot.replace(".png", "_zoomed.png")
        viewer.screenshot(zoomed, canvas_only=False, flash=False)
        viewer.reset_view()
        draw()
        viewer.screenshot(screenshot, canvas_only=False, flash=False)
        print(f"          screenshots: {screenshot}, {zoomed}")
    viewer.reset_view()
    draw()
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
    parser.add_argument("--screenshot", default=None, help="window at the largest size (PNG)")
    args = parser.parse_args()
    results: list = []
    for n in args.sizes:
        run(n, results, args.screenshot if n == max(args.sizes) else None)
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
