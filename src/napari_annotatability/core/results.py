"""What an audit, the gene scores and the trainability graph computed, before it is written.

Computing and writing are separate so a GUI can compute in a worker thread and write
on the main thread (each result's ``write``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core import anndata_io as io
from napari_annotatability.core import keys
from napari_annotatability.core.dynamics import DynamicsRecord
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.evidence import LabelEvidence
from napari_annotatability.core.flag_calibration import EvidenceCutoffs
from napari_annotatability.core.scores import (
    FLAG_CATEGORIES,
    Cutoffs,
)

logger = logging.getLogger(__name__)


@dataclass
class AnnotatabilityResult:
    """Everything one audit computed, before it is written into the AnnData.

    Computing and writing are separate so a GUI can compute in a worker thread and
    write on the main thread (:meth:`write`).

    Attributes
    ----------
    flags
        The flags written to ``obs[f"{label_key}_flag"]``: from the label evidence
        (``flag_method == "evidence"``) or from training dynamics (``"dynamics"``).
    dynamics_flags
        The method's own flags from conf and var (METHOD section 2).
    evidence, evidence_cutoffs
        The label evidence and the cut-offs of its flags (``None`` with
        ``flags="dynamics"``).
    """

    label_key: str
    cell_mask: np.ndarray
    classes: tuple[str, ...]
    conf: np.ndarray
    var: np.ndarray
    flags: pd.Categorical
    suggested: np.ndarray | None
    cutoffs: Cutoffs | None
    record: DynamicsRecord
    params: dict = field(default_factory=dict)
    flag_method: str = "dynamics"
    dynamics_flags: pd.Categorical | None = None
    evidence: LabelEvidence | None = None
    evidence_cutoffs: EvidenceCutoffs | None = None

    def write(self, adata: AnnData, *, store_record: bool = False) -> None:
        """Write the results into ``adata``, every key named after the annotation.

        Replaces an earlier audit of the same annotation entirely (columns of a kind
        this run did not compute are removed); audits of other annotations are untouched.
        """
        mask = self.cell_mask
        obs = adata.obs
        keys.adopt_unkeyed_audit(adata)
        obs[keys.conf_key(self.label_key)] = expand_values(self.conf, mask, np.nan)
        obs[keys.var_key(self.label_key)] = expand_values(self.var, mask, np.nan)
        flags = expand_flags(self.flags, mask)
        obs[keys.flag_key(self.label_key)] = flags
        dynamics = self.flags if self.dynamics_flags is None else self.dynamics_flags
        obs[keys.dynamics_flag_key(self.label_key)] = expand_flags(dynamics, mask)
        for key in (keys.mislabel_key(self.label_key), keys.ambiguity_key(self.label_key)):
            if key in obs.columns and self.evidence is None:
                del obs[key]  # a dynamics-only audit replaces an earlier evidence run
        probabilities = keys.class_probabilities_key(self.label_key)
        if self.evidence is not None:
            adata.obsm[probabilities] = expand_values(self.evidence.prior, mask, np.nan)
        elif probabilities in adata.obsm:
            del adata.obsm[probabilities]
        if self.evidence is not None:
            obs[keys.mislabel_key(self.label_key)] = expand_values(
                self.evidence.mislabel_score, mask, np.nan
            )
            obs[keys.ambiguity_key(self.label_key)] = expand_values(
                self.evidence.ambiguity, mask, np.nan
            )
        if self.suggested is not None:
            obs[keys.suggestion_key(self.label_key)] = pd.Categorical(
                expand_values(self.suggested, mask, np.nan), categories=list(self.classes)
            )
        elif keys.suggestion_key(self.label_key) in obs.columns:
            del obs[keys.suggestion_key(self.label_key)]
        if store_record:
            adata.obsm[keys.record_key(self.label_key)] = expand_values(
                self.record.probabilities.T, mask, np.nan
            )
        elif keys.record_key(self.label_key) in adata.obsm:
            del adata.obsm[keys.record_key(self.label_key)]  # it would be an earlier run's
        counts = pd.Series(flags).value_counts()
        uns = {
            "label_key": self.label_key,
            "classes": list(self.classes),
            "flags": self.flag_method,
            "params": {k: v for k, v in self.params.items() if v is not None},
            "device": self.record.device,
            "seconds": float(self.record.seconds),
            "n_cells_used": int(mask.sum()),
            "flag_counts": {str(k): int(v) for k, v in counts.items()},
            "versions": io.package_versions(),
        }
        if self.cutoffs is not None:
            uns["cutoffs"] = {
                k: v for k, v in dataclasses.asdict(self.cutoffs).items() if not _is_nan(v)
            }
        if self.evidence is not None and self.evidence_cutoffs is not None:
            cut = self.evidence_cutoffs
            uns["evidence"] = {
                "error_rate": float(cut.error_rate),
                "n_errors": int(cut.n_errors),
                "hard_cutoff": float(cut.hard),
                "easy_cutoff": float(cut.easy),
                "easy_max_ambiguity": float(cut.max_ambiguity),
                "calibration": cut.method,
                "penalty": self.evidence.penalty,
                "spatial_weight": self.evidence.spatial_weight,
                "n_components": self.evidence.n_components,
                "noise_matrix": self.evidence.noise,
                "seconds": float(self.evidence.seconds),
                "label_accuracy": float(self.evidence.label_accuracy),
                "commonest_share": float(self.evidence.commonest_share),
            }
            if not np.isnan(cut.separation):
                uns["evidence"]["separation"] = float(cut.separation)
        adata.uns[keys.audit_key(self.label_key)] = uns


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)


def expand_values(values: np.ndarray, mask: np.ndarray, fill: float) -> np.ndarray:
    """Spread per-kept-cell values back over all cells, ``fill`` for left-out ones."""
    if mask.all():
        return values
    out = np.full((mask.size, *values.shape[1:]), fill, dtype=np.result_type(values, type(fill)))
    out[mask] = values
    return out


def expand_flags(flags: pd.Categorical, mask: np.ndarray) -> pd.Categorical:
    """Flags of the kept cells spread over all cells (missing for left-out ones)."""
    return pd.Categorical(
        expand_values(np.asarray(flags, dtype=object), mask, np.nan),
        categories=list(FLAG_CATEGORIES),
    )


@dataclass
class GeneScoresResult:
    """Gene scores computed but not yet written (see :meth:`write`).

    Computing and writing are separate so a GUI can compute in a worker thread and
    write on the main thread.
    """

    scores: object
    settings: dict

    def write(self, adata: AnnData) -> pd.DataFrame:
        """Write the scores into ``adata.var`` and ``uns``; returns the ranked table."""
        from napari_annotatability.core.genes import HIGH, LOW, MID

        scores = self.scores
        for key, values in ((HIGH, scores.high), (LOW, scores.low), (MID, scores.mid)):
            adata.var[key] = expand_values(values, scores.kept, np.nan)
        reason = np.full(adata.n_vars, "", dtype=object)
        reason[scores.too_few_counts] = f"total counts < {self.settings['min_counts']:g}"
        reason[scores.constant] = "constant across cells"
        adata.var["conf_score_filtered"] = reason
        adata.uns["annotatability_genes"] = {
            **self.settings,
            "n_scored": int(scores.kept.sum()),
            "n_too_few_counts": int(scores.too_few_counts.sum()),
            "n_constant": int(scores.constant.sum()),
        }
        logger.info(
            "Scored %d genes; left out %d with total counts < %g and %d constant ones.",
            scores.kept.sum(),
            scores.too_few_counts.sum(),
            self.settings["min_counts"],
            scores.constant.sum(),
        )
        return ranked_genes(adata)


@dataclass
class GraphResult:
    """A trainability-aware graph computed but not yet written (see :meth:`write`).

    Computing and writing are separate so a GUI can compute in a worker thread and
    write on the main thread.
    """

    key_added: str
    connectivities: object
    distances: object
    uns: dict
    pca: tuple | None = None

    def write(self, adata: AnnData) -> None:
        """Write the graph (and a PCA computed for it) in scanpy's layout."""
        if self.pca is not None:
            embedding, components, variance_ratio, variance = self.pca
            adata.obsm["X_pca"] = embedding
            adata.varm["PCs"] = components.T
            adata.uns["pca"] = {"variance": variance, "variance_ratio": variance_ratio}
        adata.obsp[self.uns["connectivities_key"]] = self.connectivities
        adata.obsp[self.uns["distances_key"]] = self.distances
        adata.uns[self.key_added] = self.uns


def ranked_genes(adata: AnnData) -> pd.DataFrame:
    """The tidy ranked gene table from ``var`` (after :func:`gene_scores`)."""
    from napari_annotatability.core.genes import HIGH, LOW

    if HIGH not in adata.var.columns:
        raise AnnotatabilityInputError("No gene scores in adata.var; run gene_scores first.")
    tables = []
    for key, direction in ((HIGH, "high"), (LOW, "low")):
        column = adata.var[key].dropna().sort_values(ascending=False)
        tables.append(
            pd.DataFrame(
                {
                    "gene": column.index.astype(str),
                    "score": column.to_numpy(),
                    "direction": direction,
                    "rank": np.arange(1, column.size + 1),
                }
            )
        )
    return pd.concat(tables, ignore_index=True)
