"""The class report, the given x suggested matrix and the HTML audit report (headless)."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import napari_annotatability as nat
from napari_annotatability import datasets
from napari_annotatability.cli import main as cli_main
from napari_annotatability.core import keys
from napari_annotatability.core.class_report import cells_given_suggested
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import HARD


@pytest.fixture(scope="module")
def scored():
    """A synthetic tissue with 10% flipped labels, audited with the default flags."""
    adata = datasets.synthetic_tissue(n_cells=900, n_genes=60, n_classes=4, seed=5)
    nat.annotate(adata, "label", epochs=30)
    return adata


def test_class_report_counts_what_the_audit_wrote(scored):
    report = nat.class_report(scored, "label")
    labels = scored.obs["label"].astype(str)
    flags = scored.obs[keys.flag_key("label")].astype(str)
    assert set(report.index) == set(labels)
    assert report["cells"].sum() == scored.n_obs
    for name, row in report.iterrows():
        mine = labels == name
        assert row["cells"] == mine.sum()
        assert row["flagged"] == (mine & (flags == HARD)).sum()
        assert row["flagged_pct"] == pytest.approx(100 * row["flagged"] / row["cells"])
    # the classes' estimates add up to the audit's own estimate of wrong labels
    n_errors = scored.uns[keys.audit_key("label")]["evidence"]["n_errors"]
    assert report["estimated_wrong"].sum() == pytest.approx(n_errors)
    # and they follow the injected errors: the estimate is within a third of the truth
    assert report["estimated_wrong"].sum() == pytest.approx(
        scored.obs["is_flipped"].sum(), rel=0.35
    )
    # the top suggestion of a class is the most common one among its flagged cells
    suggested = scored.obs[keys.suggestion_key("label")].astype(object)
    name = report["flagged"].idxmax()
    among = suggested[(labels == name) & (flags == HARD)].dropna().value_counts()
    assert report.loc[name, "top_suggestion"] == among.index[0]
    assert report.loc[name, "top_suggestion_cells"] == among.iloc[0]


def test_suggestion_matrix_and_its_cells(scored):
    matrix = nat.suggestion_matrix(scored, "label")
    labels = scored.obs["label"].astype(str).to_numpy()
    suggested = scored.obs[keys.suggestion_key("label")].astype(object).to_numpy()
    has = pd.notna(suggested) & (labels != suggested.astype(str))
    assert matrix.to_numpy().sum() == has.sum()
    given, to = np.unravel_index(np.argmax(matrix.to_numpy()), matrix.shape)
    given, to = matrix.index[given], matrix.columns[to]
    cells = cells_given_suggested(scored.obs["label"], suggested, given, to)
    assert len(cells) == matrix.loc[given, to]
    assert np.all(labels[cells] == given) and np.all(suggested[cells] == to)
    # the wrong labels it names are mostly the injected flips
    assert scored.obs["is_flipped"].to_numpy()[has].mean() > 0.6


class Page(HTMLParser):
    """Images, links and table cells of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.images, self.links, self.cells, self.stack = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.stack.append(tag)
        if tag == "img":
            self.images.append(attrs)
        for name in ("href", "src"):
            if name in attrs and tag != "img":
                self.links.append(attrs[name])

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("td", "th"):
            self.cells.append(data)


def test_the_html_report_is_self_contained_and_shows_the_numbers(scored, tmp_path):
    adata = scored.copy()
    curation = nat.curate(adata, "label")
    hard = np.flatnonzero(adata.obs[keys.flag_key("label")].astype(str) == HARD)
    curation.accept_suggestions(hard[:5])
    path = nat.write_report(adata, tmp_path / "audit.html", "label")
    text = path.read_text("utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = Page()
    page.feed(text)
    page.close()
    assert page.stack == [] or page.stack == ["html"]  # every element closed
    # two figures (tissue, data map), embedded as PNG; nothing fetched from anywhere
    assert len(page.images) == 2
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and page.links == []
    # the class report's numbers, the estimate, the curation and the settings
    report = nat.class_report(adata, "label")
    for name, row in report.iterrows():
        assert name in page.cells
        assert f"{row['cells']:,}" in page.cells and f"{row['flagged']:,}" in page.cells
    assert nat.audit_summary(adata, "label") in text
    assert "logged edits: suggestion" in page.cells and "5" in page.cells
    assert "version: torch" in page.cells
    # written atomically, never over an existing file unless asked
    with pytest.raises(AnnotatabilityInputError, match="exists"):
        nat.write_report(adata, path, "label")
    nat.write_report(adata, path, "label", overwrite=True)
    assert not list(tmp_path.glob(".audit.html.*"))


def test_report_command(scored, tmp_path, capsys):
    source = tmp_path / "scored.h5ad"
    scored.write_h5ad(source)
    out = tmp_path / "audit.html"
    assert cli_main(["report", str(source), "-o", str(out)]) == 0
    assert out.read_text("utf-8").count("data:image/png;base64,") == 2
    assert str(out) in capsys.readouterr().out
    # no audit: a clear message
    bare = tmp_path / "bare.h5ad"
    datasets.synthetic_tissue(n_cells=50, n_genes=10, n_classes=2).write_h5ad(bare)
    assert cli_main(["report", str(bare), "-o", str(tmp_path / "x.html")]) != 0
    assert "No audit" in capsys.readouterr().err
    # an output that is not HTML is refused before any work, and nothing is written
    assert cli_main(["report", str(source), "-o", str(tmp_path / "audit.h5ad")]) == 2
    assert ".html" in capsys.readouterr().err and not (tmp_path / "audit.h5ad").exists()
    # an existing report is kept unless --overwrite
    before = out.read_bytes()
    assert cli_main(["report", str(source), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before


def test_a_dynamics_audit_without_coordinates_reports_without_estimates(tmp_path):
    """flags="dynamics" has no mislabel score; no obsm["spatial"]: no tissue figure."""
    adata = datasets.synthetic_tissue(n_cells=300, n_genes=30, n_classes=3, seed=2)
    del adata.obsm["spatial"]
    nat.annotate(adata, "label", **{**nat.REFERENCE_SETTINGS, "epochs": 5, "suggest_epochs": 5})
    report = nat.class_report(adata, "label")
    assert report["estimated_wrong"].isna().all()
    # a suggestion equal to the cell's own label is no correction
    assert all(name != report.loc[name, "top_suggestion"] for name in report.index)
    text = nat.write_report(adata, tmp_path / "audit.html").read_text("utf-8")
    assert text.count("data:image/png;base64,") == 1  # the data map only
    assert "No curation of this annotation" in text
