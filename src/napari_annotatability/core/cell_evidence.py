"""Why is this cell flagged? The evidence behind one cell's flag, fast enough to follow the mouse.

For one cell of an audited AnnData, :class:`CellEvidenceIndex` gathers what a curator
decides on (docs/review.md):

- its training curve (the probability of its label at each epoch, from the record in
  ``obsm``) against the median and quartiles of its class's curves;
- what the models that never saw its label think it is (the out-of-fold class
  probabilities in ``obsm``), its mislabel score, and which cut-off made its flag;
- the labels of its nearest cells on the tissue;
- the genes that best separate its label from the suggested one, with its own values
  against both classes' distributions.

Everything a class or a pair of classes shares (median curves, gene contrasts) is
computed on first use and kept, so a cell takes milliseconds once its classes have been
seen. Gene contrasts use at most :data:`CLASS_SAMPLE` cells of each class, sliced from
the matrix as stored (a sparse matrix is never densified; only the chosen genes'
columns of the sampled rows are).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from napari_annotatability.core import keys
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.review import Neighbourhood
from napari_annotatability.core.scores import AMBIGUOUS, EASY, EASY_CONF, EASY_VAR, HARD

logger = logging.getLogger(__name__)

#: Cells of a class used for its gene statistics at most (a fixed random sample).
CLASS_SAMPLE = 2_000
#: Percentiles that summarise a class's values of a gene (whiskers, box, median).
PERCENTILES = (5, 25, 50, 75, 95)
#: Class pairs and classes whose statistics are kept.
_CACHE_SIZE = 256


@dataclass(frozen=True)
class GeneContrast:
    """One gene that separates two classes, and where a cell lies between them.

    Attributes
    ----------
    gene
        The gene (``var_names``).
    cell_value
        The cell's value in the matrix used.
    label_percentiles, other_percentiles
        :data:`PERCENTILES` of the gene in the cell's class and in the other class.
    effect
        Standardised mean difference, label minus other: positive when the gene is
        higher in the cell's class.
    """

    gene: str
    cell_value: float
    label_percentiles: np.ndarray
    other_percentiles: np.ndarray
    effect: float


@dataclass(frozen=True)
class CellEvidence:
    """What the audit knows about one cell.

    Attributes
    ----------
    position
        obs position.
    cell
        Cell id.
    label, flag, suggestion
        The given label, its flag and the suggested correction (``None``: none).
    reason
        Which cut-off made the flag, in words.
    mislabel_score, ambiguity, conf, var
        The cell's scores (NaN where the audit has none).
    curve
        Probability of its label at each epoch (``None`` without a stored record).
    class_curve
        Rows 25th percentile, median, 75th percentile of its class's curves.
    top_classes
        ``(class, probability)`` pairs, most probable first, from the out-of-fold
        models (empty without them).
    neighbours
        ``(label, count)`` of its nearest cells on the tissue, commonest first.
    other
        The class its genes are compared with (the suggestion, else the most probable
        other class), or ``None``.
    genes
        The genes that best separate ``label`` from ``other``.
    """

    position: int
    cell: str
    label: str
    flag: str
    suggestion: str | None
    reason: str
    mislabel_score: float
    ambiguity: float
    conf: float
    var: float
    curve: np.ndarray | None
    class_curve: np.ndarray | None
    top_classes: list[tuple[str, float]]
    neighbours: list[tuple[str, int]]
    other: str | None
    genes: list[GeneContrast] = field(default_factory=list)


def _value(obs: pd.DataFrame, column: str, position: int) -> float:
    if column not in obs.columns:
        return float("nan")
    value = obs[column].iloc[position]
    return float("nan") if pd.isna(value) else float(value)


def _text(obs: pd.DataFrame, column: str, position: int) -> str | None:
    if column not in obs.columns:
        return None
    value = obs[column].iloc[position]
    return None if pd.isna(value) else str(value)


def flag_reason(
    info: dict,
    flag: str,
    score: float,
    ambiguity: float,
    conf: float,
    var: float,
    rank: int | None = None,
) -> str:
    """Which cut-off of the audit ``info`` (its ``uns`` entry) made ``flag``, in words.

    ``rank``: the cell's place when the cells are ordered by mislabel score, highest first.
    """
    evidence = info.get("evidence")
    if info.get("flags") == "evidence" and isinstance(evidence, dict):
        hard = float(evidence.get("hard_cutoff", np.inf))
        easy = float(evidence.get("easy_cutoff", -np.inf))
        most = float(evidence.get("easy_max_ambiguity", 1.0))
        n_errors = int(evidence.get("n_errors", 0))
        if flag == HARD and evidence.get("calibration") == "posterior":
            return f"mislabel score {score:.3f} > {hard:.2f} (flags not calibrated)"
        if flag == HARD:
            total = info.get("n_cells_used")
            of = "" if total is None else f" of {int(total):,}"
            ranked = "" if rank is None else f"ranks {rank:,}{of}: "
            return (
                f"mislabel score {score:.3f} {ranked}the {n_errors:,} highest are flagged "
                f"(the audit's estimate of wrong labels; cut-off {hard:.3f})"
            )
        if flag == EASY:
            return (
                f"mislabel score {score:.3f} <= {easy:.3f} (Easy cut-off) and ambiguity "
                f"{ambiguity:.2f} < {most:.2f}"
            )
        if flag == AMBIGUOUS:
            if score > easy:
                return (
                    f"mislabel score {score:.3f} between the Easy cut-off {easy:.3f} and "
                    f"the Hard cut-off {hard:.3f}"
                )
            return f"ambiguity {ambiguity:.2f} >= {most:.2f}: the evidence splits between classes"
        return "not audited (left out of the audit)"
    params = info.get("params", {})
    easy_conf = float(params.get("easy_conf", EASY_CONF))
    easy_var = float(params.get("easy_var", EASY_VAR))
    cut = info.get("cutoffs", {})
    if flag == HARD:
        return (
            f"conf {conf:.3f} <= {cut.get('conf', np.nan):.3f} and var {var:.3f} <= "
            f"{cut.get('var', np.nan):.3f}: trains like the cells whose labels were flipped"
        )
    if flag == EASY:
        return f"conf {conf:.3f} > {easy_conf:g} and var {var:.3f} < {easy_var:g}"
    if flag == AMBIGUOUS:
        return (
            f"neither Hard (conf <= {cut.get('conf', np.nan):.3f} and var <= "
            f"{cut.get('var', np.nan):.3f}) nor Easy (conf > {easy_conf:g} and var < "
            f"{easy_var:g})"
        )
    return "not audited (left out of the audit)"


class _LRU(dict):
    """A dict that forgets its oldest entries beyond :data:`_CACHE_SIZE`."""

    def remember(self, key, value):
        self[key] = value
        while len(self) > _CACHE_SIZE:
            del self[next(iter(self))]
        return value


class CellEvidenceIndex:
    """The evidence of any cell of one audited annotation (:meth:`of`).

    Parameters
    ----------
    adata
        Audited data (``nat.annotate`` or the training widget wrote the audit).
    label_key
        The audited annotation.
    coords
        ``(m, 2)`` tissue coordinates of the cells at obs ``positions``, or ``None`` (no
        neighbours): the cells of one section, say.
    positions
        obs positions of the rows of ``coords`` (default: all cells in obs order).
    n_genes
        Genes per cell: half higher in its class, half higher in the other.
    n_neighbours
        Nearest cells whose labels are counted.
    """

    def __init__(
        self,
        adata: AnnData,
        label_key: str,
        coords: np.ndarray | None = None,
        positions: np.ndarray | None = None,
        *,
        n_genes: int = 6,
        n_neighbours: int = 10,
    ) -> None:
        info = keys.audit_info(adata, label_key)
        if info is None:
            raise AnnotatabilityInputError(
                f"No audit of {label_key!r} in this AnnData (uns[{keys.audit_key(label_key)!r}] "
                "is missing): train first (the Training widget, nat.annotate or "
                "`napari-annotatability score`)."
            )
        self.adata, self.label_key, self.info = adata, label_key, info
        self.n_genes, self.n_neighbours = int(n_genes), int(n_neighbours)
        self._coords, self._positions = coords, positions
        labels = adata.obs[label_key]
        self.labels = labels.astype(object).where(labels.notna(), "nan").astype(str).to_numpy()
        self.classes = [str(c) for c in info.get("classes", sorted(set(self.labels)))]
        record = adata.obsm.get(keys.record_key(label_key))
        self.record = None if record is None else np.asarray(record)
        probs = adata.obsm.get(keys.class_probabilities_key(label_key))
        self.probabilities = None if probs is None else np.asarray(probs)
        layer = info.get("params", {}).get("layer")
        self.matrix = adata.layers.get(layer, adata.X)
        if sp.issparse(self.matrix) and not isinstance(self.matrix, sp.csr_matrix | sp.csr_array):
            self.matrix = sp.csr_matrix(self.matrix)
        self._curves: _LRU = _LRU()
        self._contrasts: _LRU = _LRU()
        self._samples: _LRU = _LRU()

    @cached_property
    def tissue(self) -> Neighbourhood | None:
        """The cells' tissue neighbourhood (built at first use), ``None`` without coordinates."""
        if self._coords is None:
            return None
        return Neighbourhood(self._coords, self.n_neighbours, self._positions)

    @cached_property
    def _members(self) -> dict[str, np.ndarray]:
        codes, names = pd.factorize(self.labels)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        return {str(name): order[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}

    @property
    def memory_bytes(self) -> int:
        """Bytes of the record and class probabilities this index reads (held by ``adata``)."""
        return sum(int(a.nbytes) for a in (self.record, self.probabilities) if a is not None)

    # --- per class ---------------------------------------------------------------
    def class_curve(self, label: str) -> np.ndarray | None:
        """25th percentile, median and 75th percentile of the class's training curves."""
        if self.record is None:
            return None
        if label not in self._curves:
            rows = self._sample(label)
            curves = self.record[rows]
            curves = curves[~np.isnan(curves).any(axis=1)]
            summary = np.percentile(curves, (25, 50, 75), axis=0) if len(curves) else None
            self._curves.remember(label, summary)
        return self._curves[label]

    def _sample(self, label: str) -> np.ndarray:
        """At most :data:`CLASS_SAMPLE` obs positions of the class (fixed, sorted)."""
        if label not in self._samples:
            members = self._members.get(label, np.zeros(0, dtype=np.int64))
            if members.size > CLASS_SAMPLE:
                rng = np.random.default_rng(len(members))
                members = np.sort(rng.choice(members, CLASS_SAMPLE, replace=False))
            self._samples.remember(label, members)
        return self._samples[label]

    def contrast(
        self, label: str, other: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Genes separating ``label`` from ``other``: indices, effects and both percentiles.

        The genes are the ``n_genes / 2`` with the largest standardised mean difference
        either way (mean difference over the root mean of both variances, on the
        classes' samples).
        """
        pair = (label, other)
        if pair not in self._contrasts:
            self._contrasts.remember(pair, self._contrast(label, other))
        return self._contrasts[pair]

    def _contrast(self, label: str, other: str):
        X = self.matrix
        rows_a, rows_b = self._sample(label), self._sample(other)
        empty = np.zeros(0, dtype=np.int64)
        if X is None or X.shape[1] == 0 or rows_a.size == 0 or rows_b.size == 0:
            return (
                empty,
                np.zeros(0),
                np.zeros((0, len(PERCENTILES))),
                np.zeros((0, len(PERCENTILES))),
            )
        block_a, block_b = X[rows_a], X[rows_b]
        mean_a, var_a = _moments(block_a)
        mean_b, var_b = _moments(block_b)
        spread = np.sqrt((var_a + var_b) / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            effect = np.where(spread > 0, (mean_a - mean_b) / spread, 0.0)
        half = max(self.n_genes // 2, 1)
        up = np.argsort(-effect, kind="stable")[:half]
        down = np.argsort(effect, kind="stable")[:half]
        genes = np.concatenate([up[effect[up] > 0], down[effect[down] < 0]])
        values_a = _dense(block_a[:, genes])
        values_b = _dense(block_b[:, genes])
        return (
            genes,
            effect[genes],
            np.percentile(values_a, PERCENTILES, axis=0).T,
            np.percentile(values_b, PERCENTILES, axis=0).T,
        )

    # --- per cell ------------------------------------------------------------------
    def neighbours(self, position: int) -> list[tuple[str, int]]:
        """Labels of the cell's nearest cells on the tissue, commonest first."""
        return [] if self.tissue is None else self.tissue.label_counts(position, self.labels)

    def _rank(self, score: float) -> int | None:
        """Place of a mislabel score among the cells', highest first (ties share a place)."""
        if np.isnan(score) or self._scores is None:
            return None
        return int(np.count_nonzero(self._scores > score)) + 1

    @cached_property
    def _scores(self) -> np.ndarray | None:
        column = self.adata.obs.get(keys.mislabel_key(self.label_key))
        return None if column is None else column.to_numpy(dtype=float)

    def top_classes(self, position: int, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most probable classes of the out-of-fold models, with probabilities."""
        if self.probabilities is None:
            return []
        row = self.probabilities[position]
        if np.isnan(row).all():
            return []
        order = np.argsort(-row, kind="stable")[:n]
        return [(self.classes[i], float(row[i])) for i in order]

    def of(self, position: int) -> CellEvidence:
        """The evidence of the cell at obs ``position``."""
        position = int(position)
        if not 0 <= position < self.adata.n_obs:
            raise AnnotatabilityInputError(
                f"Cell position {position} is out of range: the data have "
                f"{self.adata.n_obs:,} cells."
            )
        obs, key = self.adata.obs, self.label_key
        label = self.labels[position]
        flag = _text(obs, keys.flag_key(key), position) or "not audited"
        score = _value(obs, keys.mislabel_key(key), position)
        ambiguity = _value(obs, keys.ambiguity_key(key), position)
        conf = _value(obs, keys.conf_key(key), position)
        var = _value(obs, keys.var_key(key), position)
        suggestion = _text(obs, keys.suggestion_key(key), position)
        top = self.top_classes(position)
        other = suggestion
        if other is None:
            other = next((name for name, _ in top if name != label), None)
        genes: list[GeneContrast] = []
        if other is not None and other != label:
            indices, effects, label_pct, other_pct = self.contrast(label, other)
            if indices.size:
                values = _dense(self.matrix[[position]][:, indices]).ravel()
                names = self.adata.var_names[indices]
                genes = [
                    GeneContrast(
                        str(names[i]),
                        float(values[i]),
                        label_pct[i],
                        other_pct[i],
                        float(effects[i]),
                    )
                    for i in range(indices.size)
                ]
        curve = None
        if self.record is not None and not np.isnan(self.record[position]).all():
            curve = np.asarray(self.record[position], dtype=float)
        return CellEvidence(
            position=position,
            cell=str(self.adata.obs_names[position]),
            label=label,
            flag=flag,
            suggestion=suggestion,
            reason=flag_reason(self.info, flag, score, ambiguity, conf, var, self._rank(score)),
            mislabel_score=score,
            ambiguity=ambiguity,
            conf=conf,
            var=var,
            curve=curve,
            class_curve=None if curve is None else self.class_curve(label),
            top_classes=top,
            neighbours=self.neighbours(position),
            other=other,
            genes=genes,
        )


def _dense(block) -> np.ndarray:
    """A small block (a few genes of sampled cells) as a float array."""
    return np.asarray(block.toarray() if sp.issparse(block) else block, dtype=float)


def _moments(block) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and variance of a block of rows, without densifying a sparse one."""
    if sp.issparse(block):
        mean = np.asarray(block.mean(axis=0), dtype=float).ravel()
        square = np.asarray(block.multiply(block).mean(axis=0), dtype=float).ravel()
        return mean, np.maximum(square - mean**2, 0.0)
    values = np.asarray(block, dtype=float)
    return values.mean(axis=0), values.var(axis=0)
