import os
import signal
import subprocess
import sys

import anndata as ad
import pandas as pd
import pytest

from napari_annotatability.cli import main
from napari_annotatability.core.anndata_io import write_zarr_atomic
from napari_annotatability.datasets import synthetic_tissue

FAST = ["--epochs", "3", "--suggest-epochs", "3", "--device", "cpu", "-q"]


@pytest.fixture
def counts_file(tmp_path):
    path = tmp_path / "tissue.h5ad"
    synthetic_tissue(n_cells=600, n_genes=50, n_classes=3, seed=0).write_h5ad(path)
    return path


def test_score_writes_a_new_file_next_to_the_input(counts_file, capsys):
    assert main(["score", str(counts_file), "--label", "label", "--normalize", *FAST]) == 0
    out = counts_file.with_name("tissue_annotatability.h5ad")
    scored = ad.read_h5ad(out)
    assert {"label_conf", "label_var", "label_flag"} <= set(scored.obs.columns)
    assert scored.uns["label_annotatability"]["params"]["epochs"] == 3
    assert "label_conf" not in ad.read_h5ad(counts_file).obs  # input untouched
    printed = capsys.readouterr().out
    assert "Scored 600 cells" in printed
    n_errors = scored.uns["label_annotatability"]["evidence"]["n_errors"]
    assert f"about {n_errors} of 600 labels" in printed and "look wrong" in printed
    assert "obs['label_mislabel_score']" in printed


def test_flags_from_the_training_dynamics(counts_file, tmp_path, capsys):
    out = tmp_path / "dynamics.h5ad"
    args = ["score", str(counts_file), "--label", "label", "--normalize", "-o", str(out)]
    assert main([*args, *FAST, "--flags", "dynamics", "--min-steps", "2"]) == 0
    scored = ad.read_h5ad(out)
    assert "label_mislabel_score" not in scored.obs
    params = scored.uns["label_annotatability"]["params"]
    assert params["flags"] == "dynamics" and params["min_steps"] == 2
    assert "flagged Hard-to-learn by training dynamics" in capsys.readouterr().out


def test_learning_rate_auto_a_number_or_the_reference_settings(counts_file, tmp_path, capsys):
    def params(*extra: str) -> dict:
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.h5ad"
        args = ["score", str(counts_file), "--label", "label", "--normalize", "-o", str(out)]
        assert main([*args, *FAST, "--no-suggest", *extra]) == 0
        return ad.read_h5ad(out).uns["label_annotatability"]["params"]

    auto = params()
    assert auto["lr"] == "auto" and auto["lr_used"] >= 0.001 and auto["min_width"] == 64
    assert params("--lr", "0.02", "--min-width", "8")["lr_used"] == 0.02
    reference = params("--reference-settings")
    assert reference["lr_used"] == 0.001 and "min_width" not in reference
    with pytest.raises(SystemExit):
        main(["score", str(counts_file), "--lr", "fast", *FAST])
    assert "expected a positive number or 'auto'" in capsys.readouterr().err


def test_label_defaults_to_uns_label_key(counts_file, tmp_path):
    out = tmp_path / "o.h5ad"
    assert main(["score", str(counts_file), "--normalize", "-o", str(out), *FAST]) == 0
    assert ad.read_h5ad(out).uns["label_annotatability"]["label_key"] == "label"


def test_sample_runs_on_the_bundled_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["score", "--sample", *FAST, "--no-suggest"]) == 0
    assert main(["score", "--sample", *FAST, "--no-suggest"]) == 0  # repeatable (README)
    scored = ad.read_h5ad(tmp_path / "annotatability_sample.h5ad")
    assert scored.n_obs == 3636 and "layer_flag" in scored.obs


def test_a_missing_output_folder_is_refused_before_any_work(counts_file, tmp_path, capsys):
    out = tmp_path / "missing" / "out.h5ad"
    assert main(["score", str(counts_file), "--label", "label", "-o", str(out), *FAST]) == 2
    assert f"Output folder {str(out.parent)!r} does not exist" in capsys.readouterr().err
    assert not out.parent.exists()


def test_refuses_to_overwrite_input_or_existing_output(counts_file, capsys):
    before = counts_file.read_bytes()
    assert main(["score", str(counts_file), "-o", str(counts_file), *FAST]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert counts_file.read_bytes() == before
    out = counts_file.with_name("exists.h5ad")
    out.write_bytes(b"keep me")
    assert main(["score", str(counts_file), "--normalize", "-o", str(out), *FAST]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert (
        main(["score", str(counts_file), "--normalize", "-o", str(out), "--overwrite", *FAST]) == 0
    )
    assert "label_conf" in ad.read_h5ad(out).obs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "nope"], "'nope' not found in adata.obs"),
        (["--label", "label", "--layer", "raw"], "Layer 'raw' not found"),
        (["--label", "label", "--device", "cuda:7"], "not available"),
        (
            [
                "--label",
                "label",
                "--depth",
                "5",
                "--n-top-genes",
                "10",
                "--normalize",
                "--reference-settings",
            ],
            "hidden widths",
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(counts_file, capsys, args, message):
    assert main(["score", str(counts_file), *FAST, *args]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in counts_file.parent.iterdir()) == ["tissue.h5ad"]


def test_missing_input_file(tmp_path, capsys):
    assert main(["score", str(tmp_path / "none.h5ad"), *FAST]) == 2
    assert "does not exist" in capsys.readouterr().err


def _as_from_a_terminal() -> None:
    """In the child: Ctrl-C as a terminal delivers it, whatever this test process inherited.

    Ignored and blocked signals carry over into a child process, and by the time this
    test runs in the whole suite the test process has SIGINT and SIGQUIT ignored (seen in
    /proc/self/status; something in the suite calls C's signal() directly): the command
    then never sees the Ctrl-C and trains to the end.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_interrupted_run_leaves_no_partial_output(tmp_path):
    data = tmp_path / "big.h5ad"
    synthetic_tissue(n_cells=3000, n_genes=100, seed=0).write_h5ad(data)
    out = tmp_path / "out.h5ad"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "napari_annotatability",
            "score",
            str(data),
            "--normalize",
            "--epochs",
            "5000",
            "--device",
            "cpu",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_as_from_a_terminal,
    )
    try:
        # wait for a state, not a time: the progress bar of the first phase means the
        # command is inside its interrupt handling (however slow a busy machine is)
        seen = ""
        while "dynamics" not in seen:
            chunk = proc.stderr.read(64)
            assert chunk, f"the command ended before training: {seen}"
            seen += chunk
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.h5ad"]


@pytest.fixture
def scored_file(counts_file):
    out = counts_file.with_name("scored.h5ad")
    assert main(["score", str(counts_file), "--normalize", "-o", str(out), *FAST]) == 0
    return out


def test_genes_writes_var_and_a_csv(scored_file, capsys):
    out = scored_file.with_name("genes.h5ad")
    csv = scored_file.with_name("genes.csv")
    args = ["genes", str(scored_file), "--layer", "counts", "--min-counts", "10"]
    assert main([*args, "-o", str(out), "--csv", str(csv)]) == 0
    assert "conf_score_high" in ad.read_h5ad(out).var
    table = pd.read_csv(csv)
    assert list(table.columns) == ["gene", "score", "direction", "rank"]
    assert "top high:" in capsys.readouterr().out


def test_graph_writes_the_scanpy_layout(scored_file):
    out = scored_file.with_name("graph.h5ad")
    assert main(["graph", str(scored_file), "--k", "5", "--key-added", "tg", "-o", str(out)]) == 0
    graph = ad.read_h5ad(out)
    assert graph.uns["tg"]["connectivities_key"] == "tg_connectivities"
    assert graph.obsp["tg_distances"].getnnz(axis=1).max() == 5


def test_graph_without_confidence_is_a_clear_error(counts_file, capsys):
    out = counts_file.with_name("graph.h5ad")
    assert main(["graph", str(counts_file), "-o", str(out)]) == 2
    assert "run annotate" in capsys.readouterr().err
    assert not out.exists()


def test_every_command_reads_an_anndata_zarr_folder(counts_file, tmp_path, capsys):
    store = tmp_path / "tissue.zarr"
    write_zarr_atomic(ad.read_h5ad(counts_file), store)
    scored = tmp_path / "scored.zarr"
    assert main(["score", str(store), "--normalize", "-o", str(scored), *FAST]) == 0
    assert "label_flag" in ad.read_zarr(scored).obs
    out = tmp_path / "graph.h5ad"
    assert main(["graph", str(scored), "--k", "5", "-o", str(out)]) == 0
    assert "trainability_connectivities" in ad.read_h5ad(out).obsp
    assert main(["genes", str(scored), "--layer", "counts", "-o", str(tmp_path / "g.zarr")]) == 0
    capsys.readouterr()
    assert main(["score", str(store), "-o", str(tmp_path / "out.csv"), *FAST]) == 2
    assert "name it *.h5ad (one file) or *.zarr" in capsys.readouterr().err


def test_duplicate_cell_ids_are_refused_before_any_work(tmp_path, capsys):
    adata = synthetic_tissue(n_cells=200, n_genes=20, n_classes=3, seed=0)
    data = tmp_path / "dup.h5ad"
    adata.obs_names = ["a", "a", "b", "b", "b", *adata.obs_names[5:]]
    adata.write_h5ad(data)
    out = tmp_path / "out.h5ad"
    assert main(["score", str(data), "--normalize", "-o", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "not unique: 2 ids appear more than once, e.g. 'b' x3, 'a' x2" in err
    assert "obs_names_make_unique()" in err and not out.exists()


def test_the_options_and_the_widgets_share_one_definition_of_the_settings():
    from napari_annotatability.cli import _parser
    from napari_annotatability.core.dynamics import TrainingParams
    from napari_annotatability.core.settings import SETTINGS

    parsed = _parser().parse_args(["score", "x.h5ad"])
    params = TrainingParams()
    for name, setting in SETTINGS.items():
        assert getattr(parsed, name) == setting.default, name
        if hasattr(params, name):
            assert getattr(params, name) == setting.default, name
