import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import npe2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def test_manifest_ships_inside_the_package_and_matches_the_root():
    shipped = files("napari_annotatability") / "napari.yaml"
    assert shipped.is_file()
    assert shipped.read_text() == (REPO / "napari.yaml").read_text()


def test_npe2_finds_and_validates_the_manifest():
    manifest = npe2.PluginManifest.from_distribution("napari-annotatability")
    assert manifest.name == "napari-annotatability"
    commands = {c.id for c in manifest.contributions.commands}
    for sample in manifest.contributions.sample_data:
        assert sample.command in commands
    for command in manifest.contributions.commands:  # every python_name imports
        module, attr = command.python_name.split(":")
        assert callable(getattr(__import__(module, fromlist=[attr]), attr))


def test_wheel_contains_the_manifest(tmp_path):
    pytest.importorskip("hatchling")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("napari_annotatability-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read("napari_annotatability/napari.yaml").decode()
        entry_points = next(n for n in zf.namelist() if n.endswith("entry_points.txt"))
        assert "napari_annotatability:napari.yaml" in zf.read(entry_points).decode()
        assert "napari_annotatability/data/visium_dlpfc_steam.h5ad" in zf.namelist()
    assert yaml.safe_load(text)["name"] == "napari-annotatability"
