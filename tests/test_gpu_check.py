"""benchmarks/gpu_check.py in its CPU mode, as a GPU machine would run it.

The GPU machine has torch, numpy, scipy, pandas and h5py, and anndata brought as a
wheel, but none of scanpy, scikit-learn, napari, squidpy or matplotlib: the script runs
here with those made unimportable, so that it is known to work there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("scanpy", "sklearn", "napari", "squidpy", "matplotlib", "spatialdata", "dask", "tqdm")


def test_gpu_check_runs_at_small_size_without_the_gui_and_analysis_stacks(tmp_path):
    out = tmp_path / "gpu_check.md"
    blocker = (
        "import runpy, sys\n"
        f"for name in {ABSENT!r}:\n"
        "    sys.modules[name] = None\n"
        f"sys.argv = ['gpu_check.py', '--small', '--device', 'cpu', '--epochs', '5',\n"
        f"            '--out', {str(out)!r}]\n"
        f"runpy.run_path({str(ROOT / 'benchmarks' / 'gpu_check.py')!r}, run_name='__main__')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, cwd=tmp_path, timeout=900
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = out.read_text()
    for row in (
        "Spearman of conf",
        "| audit dense | 2,000 x 200 |",
        "| audit sparse 10% | 5,000 x 100 |",
        "| trainability graph",
        "host-to-device copies",
        "Agreement: pass.",
    ):
        assert row in report, row
