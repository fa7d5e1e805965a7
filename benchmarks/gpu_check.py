"""GPU check: CUDA against the CPU on real data, and full-size audits timed on the device.

One command on a GPU machine with CUDA torch, numpy, scipy, pandas and h5py (anndata
and its zarr are brought along as wheels: ``benchmarks/gpu_wheels.sh``)::

    pip install --no-index --find-links benchmarks/wheels anndata
    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu_check.md   # < 8 min, one H200

What it does, writing a markdown report as it goes (a run cut short keeps its rows):

1. Agreement: the default audit of the bundled Visium DLPFC section (3,636 spots x
   144 features, shipped with the package) on the CPU and on the device, ``--seeds``
   seeds each. Passes when the Spearman correlation of ``conf`` between the device and
   the CPU (different seeds) is at least the CPU's own seed-to-seed correlation (less
   0.02), and each flag's fraction on the device is within the CPU's seed-to-seed
   spread of the CPU's (at least 1 percentage point).
2. Time and memory of the default audit of 200,000 x 2,000 dense and 1,000,000 x 500
   sparse (10% non-zeros) synthetic cells, and of the trainability graph of
   1,000,000 cells (50 components, k = 15; the graph runs on the CPU).
3. Where an epoch's time goes on the device: kernels against host-to-device copies
   (torch profiler over two training epochs of the sparse data): the cells are copied
   to the device once, and batches are sampled and gathered there.

``--small --device cpu`` runs the same steps at small sizes in a minute (CI runs it, so
the script is known to work where no GPU is).
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # works without installing the package
sys.path.insert(0, str(ROOT / "benchmarks"))

import anndata as ad  # noqa: E402  (brought as a wheel on the GPU machine)
from _common import synthetic  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

import napari_annotatability as nat  # noqa: E402
from napari_annotatability.core import keys  # noqa: E402
from napari_annotatability.core.dynamics import TrainingParams, training_dynamics  # noqa: E402

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

SAMPLE = ROOT / "src" / "napari_annotatability" / "data" / "visium_dlpfc_steam.h5ad"
FULL = {"dense": (200_000, 2_000), "sparse": (1_000_000, 500), "graph": 1_000_000}
SMALL = {"dense": (2_000, 200), "sparse": (5_000, 100), "graph": 5_000}
#: Spearman tolerance below the CPU's seed-to-seed level, and least flag-fraction spread.
RHO_TOLERANCE, FRACTION_FLOOR = 0.02, 0.01


class Report:
    """Markdown lines, printed and rewritten to ``path`` after each addition."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.lines = path, []

    def add(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
        self.lines.extend(lines)
        if self.path is not None:
            self.path.write_text("\n".join(self.lines) + "\n")


def resolve(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device (torch.cuda.is_available()).")
    return device


def host_peak_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def device_peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return float("nan")


def reset_device_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def audit(adata: ad.AnnData, label: str, device: str, seed: int, epochs: int | None):
    """The default audit (as ``nat.annotate``); returns (annotated copy, seconds)."""
    options = {} if epochs is None else {"epochs": epochs}
    start = time.perf_counter()
    scored = nat.annotate(adata, label, device=device, seed=seed, copy=True, **options)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return scored, time.perf_counter() - start


def agreement(report: Report, device: str, seeds: int, epochs: int | None) -> bool:
    adata = ad.read_h5ad(SAMPLE)
    label = str(adata.uns.get("label_key", "layer"))
    runs = {}
    for backend in ("cpu", device):
        for seed in range(seeds):
            if (backend, seed) in runs:
                continue
            scored, seconds = audit(adata, label, backend, seed, epochs)
            runs[backend, seed] = (
                scored.obs[keys.conf_key(label)].to_numpy(),
                scored.obs[keys.flag_key(label)].astype(str).to_numpy(),
                seconds,
            )

    def rho(a, b) -> float:
        return float(spearmanr(runs[a][0], runs[b][0]).statistic)

    pairs = [(s, t) for s in range(seeds) for t in range(seeds) if s != t]
    cpu_level = float(np.mean([rho(("cpu", s), ("cpu", t)) for s, t in pairs]))
    across = float(np.mean([rho((device, s), ("cpu", t)) for s, t in pairs]))
    rho_ok = across >= cpu_level - RHO_TOLERANCE
    report.add(
        f"## Agreement: {device} against the CPU (bundled Visium DLPFC, "
        f"{adata.n_obs:,} x {adata.n_vars:,}, default audit, {seeds} seeds)",
        "",
        "| measure | CPU | " + device + " | result |",
        "|---|---:|---:|---|",
        f"| Spearman of conf, different seeds (CPU-CPU; {device}-CPU) | {cpu_level:.3f} | "
        f"{across:.3f} | {'pass' if rho_ok else 'FAIL'} (at least CPU - {RHO_TOLERANCE}) |",
    )
    flags_ok = True
    for flag in sorted({f for key in runs for f in np.unique(runs[key][1])}):
        cpu = [float(np.mean(runs["cpu", s][1] == flag)) for s in range(seeds)]
        dev = [float(np.mean(runs[device, s][1] == flag)) for s in range(seeds)]
        spread = max(float(np.ptp(cpu)), FRACTION_FLOOR)
        ok = abs(np.mean(dev) - np.mean(cpu)) <= spread
        flags_ok &= ok
        report.add(
            f"| fraction {flag} (mean of seeds; CPU spread {np.ptp(cpu):.3f}) | "
            f"{np.mean(cpu):.3f} | {np.mean(dev):.3f} | {'pass' if ok else 'FAIL'} |"
        )
    cpu_s = np.mean([runs["cpu", s][2] for s in range(seeds)])
    dev_s = np.mean([runs[device, s][2] for s in range(seeds)])
    report.add(f"| seconds per audit | {cpu_s:.1f} | {dev_s:.1f} | |", "")
    return rho_ok and flags_ok


def timed_audit(report: Report, name: str, adata: ad.AnnData, device: str, epochs) -> None:
    reset_device_peak(device)
    scored, seconds = audit(adata, "label", device, 0, epochs)
    info = scored.uns[keys.audit_key("label")]
    flagged = float(np.mean(scored.obs[keys.flag_key("label")].astype(str) == "Hard-to-learn"))
    report.add(
        f"| audit {name} | {adata.n_obs:,} x {adata.n_vars:,} | {seconds:.1f} | "
        f"{device_peak_mb(device):,.0f} | {host_peak_mb():,.0f} | "
        f"{info['params'].get('epochs', '')} epochs; Hard {flagged:.3f} |"
    )


def timed_graph(report: Report, n: int) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (20, 50))
    Z = (centres[rng.integers(0, 20, n)] + rng.normal(0, 1, (n, 50))).astype(np.float32)
    adata = ad.AnnData(obs={"conf": rng.random(n)}, obsm={"X_pca": Z})
    start = time.perf_counter()
    nat.trainability_graph(adata, conf_key="conf", k=15, alpha=0.9)
    seconds = time.perf_counter() - start
    edges = adata.obsp["trainability_connectivities"].nnz
    report.add(
        f"| trainability graph (CPU, {torch.get_num_threads()} threads) | {n:,} x 50 | "
        f"{seconds:.1f} | | {host_peak_mb():,.0f} | {edges:,} edges |"
    )


def time_split(report: Report, adata: ad.AnnData, device: str) -> None:
    """Kernels against host-to-device copies over two training epochs (profiler)."""
    from torch.profiler import ProfilerActivity, profile

    codes = adata.obs["label"].cat.codes.to_numpy().astype(np.int64)
    params = TrainingParams(epochs=2, seed=0)
    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        steps = training_dynamics(adata.X, codes, 10, params, device=device)
        for _ in steps:
            pass
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    events = prof.events()
    to_device = [e for e in events if "Memcpy HtoD" in e.name]
    to_host = [e for e in events if "Memcpy DtoH" in e.name]
    kernels = [e for e in events if e.device_time_total and "Memcpy" not in e.name]

    def ms(chosen) -> float:
        return sum(e.device_time_total for e in chosen) / 1000

    report.add(
        "",
        f"## Where two training epochs of {adata.n_obs:,} x {adata.n_vars:,} sparse go ({device})",
        "",
        "| wall (s) | device kernels (ms) | host-to-device copies (ms) "
        "| device-to-host copies (ms) |",
        "|---:|---:|---:|---:|",
        f"| {wall:.1f} | {ms(kernels):,.0f} | {len(to_device)} ({ms(to_device):,.1f}) "
        f"| {len(to_host)} ({ms(to_host):,.1f}) |",
        "",
        "Batches are sampled and gathered on the device: the cells cross to it once, not "
        "per batch or epoch; what comes back is each epoch's record of probabilities."
        if device.startswith("cuda")
        else "(CPU run: no device copies.)",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cuda, cuda:1, cpu or auto")
    parser.add_argument("--small", action="store_true", help="small sizes (CI, no GPU)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="default: the audit's own")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    parser.add_argument("--skip-graph", action="store_true")
    args = parser.parse_args()
    device = resolve(args.device)
    sizes = SMALL if args.small else FULL
    report = Report(args.out)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    report.add(
        f"# GPU check ({time.strftime('%Y-%m-%d')})",
        "",
        f"{name}; torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"{torch.get_num_threads()} CPU threads, Python {platform.python_version()}, "
        f"anndata {ad.__version__ if hasattr(ad, '__version__') else ''}, "
        f"napari-annotatability {nat.__version__}.",
        "",
    )
    ok = agreement(report, device, args.seeds, args.epochs)
    report.add(
        f"## Full size on {device}",
        "",
        "| what | cells x features | seconds | device peak MB | host peak MB | notes |",
        "|---|---|---:|---:|---:|---|",
    )
    n, g = sizes["dense"]
    timed_audit(report, "dense", synthetic(n, g), device, args.epochs)
    n, g = sizes["sparse"]
    sparse = synthetic(n, g, density=0.1)
    timed_audit(report, "sparse 10%", sparse, device, args.epochs)
    if not args.skip_graph:
        timed_graph(report, sizes["graph"])
    time_split(report, sparse, device)
    report.add("", f"Agreement: {'pass' if ok else 'FAIL'}.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
