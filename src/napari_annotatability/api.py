"""Scanpy-style functions over AnnData: one call to audit an annotation, and its steps.

>>> import napari_annotatability as nat
>>> nat.annotate(adata, "cell_type")            # doctest: +SKIP
>>> adata.obs[["cell_type_conf", "cell_type_flag", "cell_type_suggested"]]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core import anndata_io as io
from napari_annotatability.core.curation import (
    Curation,
    Edit,
    curated_key,
    edits_label_column,
    export_table,
    reviewed_key,
)
from napari_annotatability.core.curation import apply_edits as _apply_edits
from napari_annotatability.core.dynamics import (
    DEFAULT_MIN_STEPS,
    REFERENCE_TRAINING,
    DynamicsRecord,
    EpochProgress,
    TrainingParams,
    fit_and_predict,
    resolve_device,
)
from napari_annotatability.core.dynamics import training_dynamics as _dynamics
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.evidence import (
    Embedding,
    EvidenceParams,
    LabelEvidence,
    calibration_runs,
    calibration_scores,
    embed,
    label_evidence,
)
from napari_annotatability.core.flag_calibration import (
    MIN_SEPARATION,
    EvidenceCutoffs,
    describe_errors,
    evidence_flags,
)
from napari_annotatability.core.flag_calibration import calibrate as calibrate_evidence
from napari_annotatability.core.inputs import TrainingInputs, encode_second_labels, prepare_inputs
from napari_annotatability.core.scores import (
    FLAG_CATEGORIES,
    HARD,
    Cutoffs,
    assign_flags,
    confidence_and_variability,
    inject_label_noise,
    noise_cutoffs,
)

logger = logging.getLogger(__name__)

#: The reference package's settings where our defaults differ:
#: ``annotate(adata, key, **REFERENCE_SETTINGS)`` trains as it does (learning rate,
#: hidden widths, one pass per epoch) and flags from the training dynamics with its
#: noise-injection cut-offs, suggesting corrections with a fresh network, as it does.
REFERENCE_SETTINGS: dict = {**REFERENCE_TRAINING, "flags": "dynamics"}

#: Seed offsets of the extra networks, so each run of one seed is reproducible.
_CALIBRATION_SEED_OFFSET = 1
_SUGGESTION_SEED_OFFSET = 2


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
        io.adopt_unkeyed_audit(adata)
        obs[io.conf_key(self.label_key)] = _expand(self.conf, mask, np.nan)
        obs[io.var_key(self.label_key)] = _expand(self.var, mask, np.nan)
        flags = _expand_flags(self.flags, mask)
        obs[io.flag_key(self.label_key)] = flags
        dynamics = self.flags if self.dynamics_flags is None else self.dynamics_flags
        obs[io.dynamics_flag_key(self.label_key)] = _expand_flags(dynamics, mask)
        for key in (io.mislabel_key(self.label_key), io.ambiguity_key(self.label_key)):
            if key in obs.columns and self.evidence is None:
                del obs[key]  # a dynamics-only audit replaces an earlier evidence run
        if self.evidence is not None:
            obs[io.mislabel_key(self.label_key)] = _expand(
                self.evidence.mislabel_score, mask, np.nan
            )
            obs[io.ambiguity_key(self.label_key)] = _expand(self.evidence.ambiguity, mask, np.nan)
        if self.suggested is not None:
            obs[io.suggestion_key(self.label_key)] = pd.Categorical(
                _expand(self.suggested, mask, np.nan), categories=list(self.classes)
            )
        elif io.suggestion_key(self.label_key) in obs.columns:
            del obs[io.suggestion_key(self.label_key)]
        if store_record:
            adata.obsm[io.record_key(self.label_key)] = _expand(
                self.record.probabilities.T, mask, np.nan
            )
        elif io.record_key(self.label_key) in adata.obsm:
            del adata.obsm[io.record_key(self.label_key)]  # it would be an earlier run's
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
                k: v for k, v in dataclasses.asdict(self.cutoffs).items() if not _isnan(v)
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
            }
            if not np.isnan(cut.separation):
                uns["evidence"]["separation"] = float(cut.separation)
        adata.uns[io.audit_key(self.label_key)] = uns


def _isnan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _expand(values: np.ndarray, mask: np.ndarray, fill: float) -> np.ndarray:
    """Spread per-kept-cell values back over all cells, ``fill`` for left-out ones."""
    if mask.all():
        return values
    out = np.full((mask.size, *values.shape[1:]), fill, dtype=np.result_type(values, type(fill)))
    out[mask] = values
    return out


def _expand_flags(flags: pd.Categorical, mask: np.ndarray) -> pd.Categorical:
    return pd.Categorical(
        _expand(np.asarray(flags, dtype=object), mask, np.nan), categories=list(FLAG_CATEGORIES)
    )


#: How ``annotate`` can flag cells: from the label evidence (default) or, as the
#: reference package does, from the training dynamics.
FLAG_METHODS = ("evidence", "dynamics")


def annotate_steps(
    adata: AnnData,
    label_key: str,
    *,
    layer: str | None = None,
    use_rep: str | None = None,
    normalize: bool = False,
    n_top_genes: int | None = None,
    drop_missing: bool = False,
    epochs: int = 50,
    lr: float | str = "auto",
    momentum: float = 0.9,
    batch_size: int = 256,
    depth: int = 3,
    weighted_sampler: bool = True,
    seed: int = 0,
    device: str = "auto",
    min_width: int | None = 64,
    min_steps: int | None = DEFAULT_MIN_STEPS,
    flags: str = "evidence",
    spatial_neighbours: int = 10,
    n_folds: int = 5,
    calibrate: bool = True,
    noise_rate: float = 0.05,
    percentile: float = 90,
    easy_conf: float = 0.95,
    easy_var: float = 0.15,
    suggest: bool = True,
    suggest_epochs: int = 100,
) -> Generator[EpochProgress, None, AnnotatabilityResult]:
    """Audit an annotation step by step; the generator behind :func:`annotate`.

    Yields one :class:`~napari_annotatability.core.dynamics.EpochProgress` per epoch
    or fit of each phase (``dynamics``, ``calibration``, ``evidence``,
    ``evidence calibration``, ``suggestion``), with ``step`` and ``total_steps`` over
    all phases, and returns an :class:`AnnotatabilityResult`.
    ``adata`` is not modified: call :meth:`AnnotatabilityResult.write`.
    Parameters are those of :func:`annotate`.
    """
    started = time.perf_counter()
    if flags not in FLAG_METHODS:
        raise AnnotatabilityInputError(
            f"flags={flags!r} is not one of {FLAG_METHODS}: 'evidence' (the label evidence, "
            "default) or 'dynamics' (conf and var, as the reference package)."
        )
    params = TrainingParams(
        epochs=epochs,
        lr=lr,
        momentum=momentum,
        batch_size=batch_size,
        depth=depth,
        weighted_sampler=weighted_sampler,
        seed=seed,
        min_width=min_width,
        min_steps=min_steps,
    )
    use_evidence = flags == "evidence"
    evidence_params = EvidenceParams(
        n_folds=n_folds, spatial_neighbours=spatial_neighbours, seed=seed
    )
    dev = resolve_device(device)
    inputs = prepare_inputs(
        adata,
        label_key,
        layer=layer,
        use_rep=use_rep,
        normalize=normalize,
        n_top_genes=n_top_genes,
        drop_missing=drop_missing,
    )
    coords, coords_source = None, None
    if use_evidence and spatial_neighbours > 0:
        coords, coords_source = _coordinates_or_none(adata, inputs.cell_mask)
    suggest_params = dataclasses.replace(
        params,
        epochs=suggest_epochs,
        depth=3,
        weighted_sampler=True,
        seed=seed + _SUGGESTION_SEED_OFFSET,
    )
    if suggest and not calibrate and not use_evidence:
        logger.warning("suggest=True needs calibrate=True (no Hard-to-learn cells); skipping.")
        suggest = False
    network_suggestions = suggest and not use_evidence
    counter = _StepCounter(
        total_steps(
            inputs.n_cells,
            epochs=epochs,
            noise_rate=noise_rate,
            calibrate=calibrate,
            flags=flags,
            suggest=suggest,
            suggest_epochs=suggest_epochs,
        )
    )
    codes, n_classes = inputs.labels.codes, inputs.labels.n_classes

    record = yield from counter.wrap(_dynamics(inputs.X, codes, n_classes, params, device=dev))
    conf, var = confidence_and_variability(record.probabilities)
    cutoffs = None
    if calibrate:
        cutoffs = yield from counter.wrap(
            _calibration_steps(inputs, params, dev, noise_rate, percentile)
        )
    dynamics_flags = assign_flags(conf, var, cutoffs, easy_conf=easy_conf, easy_var=easy_var)
    evidence = evidence_cutoffs = None
    if use_evidence:
        embedding = yield from counter.wrap(_embedding_step(inputs.X, coords, evidence_params, dev))
        evidence = yield from counter.wrap(
            label_evidence(embedding, codes, n_classes, evidence_params, device=dev)
        )
        injection, restore = None, 0.0
        if calibrate:
            check = yield from counter.wrap(
                calibration_scores(
                    embedding,
                    codes,
                    n_classes,
                    evidence_params,
                    evidence,
                    noise_rate=noise_rate,
                    seed=seed + _CALIBRATION_SEED_OFFSET,
                    device=dev,
                )
            )
            injection, restore = (check.scores, check.injected), check.restore
        evidence_cutoffs = calibrate_evidence(evidence.mislabel_score, injection, restore=restore)
        flag_values = evidence_flags(evidence.mislabel_score, evidence.ambiguity, evidence_cutoffs)
        logger.info(describe_errors(evidence_cutoffs.n_errors, inputs.n_cells))
    else:
        flag_values = dynamics_flags
    suggested = None
    if suggest:
        hard = np.asarray(flag_values == HARD)
        suggested = np.full(inputs.n_cells, np.nan, dtype=object)
        class_names = np.asarray(inputs.labels.classes, dtype=object)
        if use_evidence:
            suggested[hard] = class_names[evidence.suggested[hard]]
        elif hard.any():
            predicted = yield from counter.wrap(
                fit_and_predict(inputs.X, codes, n_classes, ~hard, suggest_params, device=dev)
            )
            suggested[hard] = class_names[predicted]
        else:
            counter.skip(suggest_epochs)
    run_params = {
        **dataclasses.asdict(params),
        "layer": layer,
        "use_rep": use_rep,
        "normalize": normalize,
        "n_top_genes": n_top_genes,
        "drop_missing": drop_missing,
        "flags": flags,
        "spatial_neighbours": spatial_neighbours if use_evidence else None,
        "n_folds": n_folds if use_evidence else None,
        "coordinates": coords_source,
        "calibrate": calibrate,
        "noise_rate": noise_rate,
        "percentile": percentile,
        "easy_conf": easy_conf,
        "easy_var": easy_var,
        "suggest": suggest,
        "suggest_epochs": suggest_epochs if network_suggestions else None,
        "lr_used": record.lr,
        "input": inputs.source,
        "n_features": inputs.n_features,
        "total_seconds": time.perf_counter() - started,
    }
    return AnnotatabilityResult(
        label_key=label_key,
        cell_mask=inputs.cell_mask,
        classes=inputs.labels.classes,
        conf=conf,
        var=var,
        flags=flag_values,
        suggested=suggested,
        cutoffs=cutoffs,
        record=record,
        params=run_params,
        flag_method=flags,
        dynamics_flags=dynamics_flags,
        evidence=evidence,
        evidence_cutoffs=evidence_cutoffs,
    )


def total_steps(
    n_cells: int,
    *,
    epochs: int = 50,
    calibrate: bool = True,
    flags: str = "evidence",
    noise_rate: float = 0.05,
    suggest: bool = True,
    suggest_epochs: int = 100,
    **_other,
) -> int:
    """Progress steps of an audit of ``n_cells`` cells (as :func:`annotate_steps` counts).

    Epochs of each training, plus one step per fit of the label evidence (the
    embedding, each number of components and penalty, each EM iteration; each
    calibration run refits once and iterates again, and small data repeat it,
    :func:`~napari_annotatability.core.evidence.calibration_runs`). Other keyword
    arguments are ignored, so a GUI can pass
    all of its settings.
    """
    evidence = EvidenceParams()
    steps = epochs * (2 if calibrate else 1)
    if flags == "evidence":
        steps += 1 + len(evidence.components) * len(evidence.penalties)
        steps += evidence.em_iterations
        if calibrate:
            runs = calibration_runs(n_cells, noise_rate)
            steps += runs * (1 + evidence.em_iterations)
    elif suggest and calibrate:
        steps += suggest_epochs
    return steps


def _coordinates_or_none(adata: AnnData, mask: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Tissue coordinates of the cells used, or ``None`` (logged) when there are none."""
    from napari_annotatability.core.coordinates import tissue_coordinates

    try:
        coords, source = tissue_coordinates(adata)
    except AnnotatabilityInputError as error:
        logger.info("No tissue neighbourhood in the label evidence: %s", error)
        return None, None
    return coords[mask], source


def _embedding_step(
    X, coords, params: EvidenceParams, device
) -> Generator[EpochProgress, None, Embedding]:
    """The principal components of the label evidence, as one progress step."""
    t0 = time.perf_counter()
    embedding = embed(X, coords, params, device=device)
    yield EpochProgress("evidence", 1, 1, float("nan"), time.perf_counter() - t0)
    return embedding


class _StepCounter:
    """Adds overall ``step``/``total_steps`` to the progress of consecutive phases."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def wrap(self, phase: Generator[EpochProgress, None, object]):
        result = yield from _forward(phase, self)
        return result

    def skip(self, n: int) -> None:
        self.done += n


def _forward(phase: Generator[EpochProgress, None, object], counter: _StepCounter):
    try:
        update = next(phase)
        while True:
            counter.done += 1
            update.step, update.total_steps = counter.done, counter.total
            yield update
            update = next(phase)
    except StopIteration as stop:
        return stop.value
    finally:
        phase.close()


def _calibration_steps(
    inputs: TrainingInputs, params: TrainingParams, device, noise_rate: float, percentile: float
) -> Generator[EpochProgress, None, Cutoffs]:
    """Noise injection (METHOD 2): train on corrupted labels, cut-offs from flipped cells."""
    seed = params.seed + _CALIBRATION_SEED_OFFSET
    rng = np.random.default_rng(seed)
    noisy, flipped = inject_label_noise(
        inputs.labels.codes, inputs.labels.n_classes, noise_rate, rng
    )
    record = yield from _dynamics(
        inputs.X,
        noisy,
        inputs.labels.n_classes,
        dataclasses.replace(params, seed=seed),
        device=device,
        phase="calibration",
    )
    conf, var = confidence_and_variability(record.probabilities)
    cutoffs = noise_cutoffs(conf, var, flipped, percentile=percentile, noise_rate=noise_rate)
    logger.info(
        "Cut-offs from %d flipped cells: conf <= %.4g, var <= %.4g.",
        cutoffs.n_flipped,
        cutoffs.conf,
        cutoffs.var,
    )
    return cutoffs


def annotate(
    adata: AnnData,
    label_key: str,
    *,
    copy: bool = False,
    store_record: bool = False,
    progress: bool | Callable[[EpochProgress], None] = False,
    **kwargs,
) -> AnnData | None:
    """Audit the annotation ``adata.obs[label_key]``: which labels look wrong, and why.

    Trains the Annotatability network and records its training dynamics (confidence and
    variability, the method's intermediate-state signal), then flags the cells with the
    label evidence (:mod:`napari_annotatability.core.evidence`): out-of-fold models that
    never saw a cell's label, its tissue neighbourhood and a label-noise model give the
    probability that the label is wrong; noise injection calibrates how many cells to
    flag. Suggests corrections for the Hard-to-learn cells.

    Parameters
    ----------
    adata
        Cells x genes, with the annotation in ``adata.obs[label_key]``.
    label_key
        The annotation to audit.
    copy
        Return an annotated copy instead of writing into ``adata``.
    store_record
        Also store the cells x epochs probability record in
        ``obsm[f"{label_key}_annotatability_probabilities"]``.
    progress
        ``True`` for a progress bar, or a callable receiving each progress update.
    **kwargs
        layer, use_rep
            Train on ``adata.layers[layer]`` or ``adata.obsm[use_rep]`` instead of ``X``.
        normalize
            Normalise to 1e4 counts and log1p first (for raw counts). Default ``False``.
        n_top_genes
            Keep only this many highly variable genes.
        drop_missing
            Leave cells with a missing label out (their results are NaN).
        epochs, lr, momentum, batch_size, depth, weighted_sampler
            Network and training (defaults 50, ``"auto"``, 0.9, 256, 3, ``True``).
            ``lr="auto"`` is ``1 / mean_i |x_i|^2`` of the input, at least the
            reference's 0.001 (logged, and kept in
            ``uns[f"{label_key}_annotatability"]["params"]["lr_used"]``).
        seed
            Seed of every network and random draw (default 0).
        device
            ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:i"``.
        min_width, min_steps
            Lower bound of the hidden widths (default 64; ``None``: the reference's
            widths ``g//2, g//4, ...``, an error when one is below 1) and of the
            optimiser steps per epoch (``None``: one pass over the cells).
        flags
            ``"evidence"`` (default): flags, score and suggestions from the label
            evidence; ``"dynamics"``: flags from conf and var with the noise-injection
            cut-offs and suggestions from a fresh network, as the reference package.
            ``annotate(adata, key, **nat.REFERENCE_SETTINGS)`` reproduces the reference
            package, its flags included.
        spatial_neighbours, n_folds
            Nearest cells on the tissue whose labels the evidence weighs (default 10; 0:
            expression only; the weight is chosen from the data) and out-of-fold models
            (default 5).
        calibrate, noise_rate, percentile
            Noise injection (``True``, 0.05): it calibrates the number of
            Hard-to-learn cells of the evidence and the cut-offs of the dynamics flags
            (``percentile`` of the injected errors' conf and var, 90). Without it the
            evidence flags a cell when its mislabel score exceeds 0.5.
        easy_conf, easy_var
            Easy-to-learn thresholds of the dynamics flags (0.95, 0.15).
        suggest, suggest_epochs
            Suggest labels for Hard-to-learn cells (``True``; the network of
            ``flags="dynamics"`` trains ``suggest_epochs``, default 100).

    Returns
    -------
    The annotated copy if ``copy=True``, else ``None``. Writes ``obs[f"{label_key}_conf"]``,
    ``obs[f"{label_key}_var"]``, ``obs[f"{label_key}_flag"]``,
    ``obs[f"{label_key}_dynamics_flag"]``, ``obs[f"{label_key}_suggested"]``, with the
    evidence ``obs[f"{label_key}_mislabel_score"]`` and ``obs[f"{label_key}_ambiguity"]``,
    and ``uns[f"{label_key}_annotatability"]`` (its ``"evidence"`` entry holds the
    estimated number of wrong labels). Every key names the annotation, so audits of
    several annotations sit side by side; :func:`reference_columns` copies conf and var
    to the reference package's ``obs["conf"]`` and ``obs["var"]``.
    """
    steps = annotate_steps(adata, label_key, **kwargs)
    result = run_steps(steps, progress)
    target = adata.copy() if copy else adata
    result.write(target, store_record=store_record)
    return target if copy else None


#: The input settings of :func:`annotate`; with the fields of ``TrainingParams`` but
#: ``epochs``, they decide how the network sees and learns the data.
_INPUT_SETTINGS = ("layer", "use_rep", "normalize", "n_top_genes", "drop_missing")
#: How the audit flags cells (stored when not ``None``).
_FLAG_SETTINGS = ("flags", "spatial_neighbours", "n_folds")


def audited_key(adata: AnnData, label_key: str | None = None) -> str:
    """The annotation whose audit to use: ``label_key``, or the only one audited.

    Raises a clear error when that annotation has no audit, or when ``label_key`` is
    ``None`` and ``adata`` holds none or several.
    """
    io.adopt_unkeyed_audit(adata)
    audited = io.audited_keys(adata)
    if label_key is not None:
        if label_key not in audited:
            raise AnnotatabilityInputError(
                f"No audit of {label_key!r} in adata.uns[{io.audit_key(label_key)!r}] "
                f"(audited: {audited or 'none'}); run annotate(adata, {label_key!r}) "
                "(CLI: napari-annotatability score --label) first."
            )
        return label_key
    if len(audited) == 1:
        return audited[0]
    if not audited:
        raise AnnotatabilityInputError(
            "No audit in adata; run annotate(adata, label_key) (CLI: napari-annotatability "
            "score) first."
        )
    raise AnnotatabilityInputError(
        f"adata holds audits of several annotations {audited}; choose one with "
        "label_key=... (CLI: --label)."
    )


def reference_columns(adata: AnnData, label_key: str | None = None) -> None:
    """Copy the audit's confidence and variability to ``obs["conf"]`` and ``obs["var"]``.

    The reference package's names, for notebooks written for it. Copies of
    ``obs[f"{label_key}_conf"]`` and ``obs[f"{label_key}_var"]``; a later audit does not
    update them.
    """
    key = audited_key(adata, label_key)
    adata.obs[io.REFERENCE_CONF] = adata.obs[io.conf_key(key)].to_numpy()
    adata.obs[io.REFERENCE_VAR] = adata.obs[io.var_key(key)].to_numpy()


def audit_summary(adata: AnnData, label_key: str | None = None) -> str:
    """One sentence on the audit of ``label_key`` (default: the only one in ``adata``).

    How many labels look wrong, by which flags: e.g. ``"about 204 of 3,636 labels
    (5.6%) look wrong (label evidence, calibrated by noise injection)"``; for a
    ``flags="dynamics"`` audit, the count of Hard-to-learn cells by conf and var.
    """
    info = adata.uns[io.audit_key(audited_key(adata, label_key))]
    n_cells = int(info["n_cells_used"])
    if "evidence" in info:
        evidence = info["evidence"]
        apart = float(evidence.get("separation", float("nan")))
        if evidence["calibration"] == "noise injection":
            how = "calibrated by noise injection"
        elif apart < MIN_SEPARATION:
            how = (
                f"mislabel score > 0.5; uncertain: injected errors scored like correct "
                f"labels, AUROC {apart:.2f}"
            )
        else:
            how = "mislabel score > 0.5"
        return f"{describe_errors(int(evidence['n_errors']), n_cells)} (label evidence, {how})"
    hard = int(info.get("flag_counts", {}).get(HARD, 0))
    return f"{hard:,} of {n_cells:,} labels flagged {HARD} by training dynamics"


def stored_training_settings(adata: AnnData, label_key: str) -> dict:
    """The input and training settings of the audit of ``label_key``, to train alike.

    Read from ``uns[f"{label_key}_annotatability"]["params"]`` (written by
    :func:`annotate`, which stores every setting but leaves out those that are ``None``).
    Every training setting is returned, an absent one as ``None`` (e.g. ``min_width`` of
    a run at the reference's widths, whose default is not ``None``); input settings only
    when stored (their defaults are ``None`` anyway). Empty when there is no such audit.
    """
    io.adopt_unkeyed_audit(adata)
    params = (io.audit_info(adata, label_key) or {}).get("params", {})
    if not params:
        return {}
    training = [f.name for f in dataclasses.fields(TrainingParams) if f.name != "epochs"]
    settings = {key: params[key] for key in _INPUT_SETTINGS + _FLAG_SETTINGS if key in params}
    settings.update({key: params.get(key) for key in training})
    # h5py gives numpy scalars back
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in settings.items()}


def run_steps(
    steps: Generator[EpochProgress, None, object],
    progress: bool | Callable[[EpochProgress], None] = False,
    *,
    total: int | None = None,
):
    """Run a step generator to its end, reporting progress; returns its result."""
    bar = None
    try:
        while True:
            try:
                update = next(steps)
            except StopIteration as stop:
                return stop.value
            if progress is True:
                if bar is None:  # created at the first update, once the total is known
                    from tqdm.auto import tqdm

                    bar = tqdm(total=update.total_steps or total, unit="epoch", dynamic_ncols=True)
                bar.set_description(update.phase, refresh=False)
                bar.set_postfix(loss=f"{update.loss:.3f}", refresh=False)
                bar.update(1)
            elif callable(progress):
                progress(update)
    finally:
        steps.close()
        if bar is not None:
            bar.close()


def training_dynamics(
    adata: AnnData,
    label_key: str,
    *,
    other_key: str | None = None,
    layer: str | None = None,
    use_rep: str | None = None,
    normalize: bool = False,
    n_top_genes: int | None = None,
    drop_missing: bool = False,
    device: str = "auto",
    progress: bool | Callable[[EpochProgress], None] = False,
    **params,
) -> DynamicsRecord:
    """Run METHOD section 1 only and return the probability record.

    Parameters
    ----------
    adata, label_key
        Data and annotation.
    other_key
        A second annotation over the same classes whose probabilities are recorded
        at every epoch too (the reference's ``follow_train_dyn_two_lables``).
    layer, use_rep, normalize, n_top_genes, drop_missing, device
        As in :func:`annotate`.
    progress
        ``True`` for a progress bar, or a callable receiving each update.
    **params
        Fields of :class:`~napari_annotatability.core.dynamics.TrainingParams`.

    Returns
    -------
    The record of the cells used (all cells, or those with a label if ``drop_missing``).
    """
    inputs = prepare_inputs(
        adata,
        label_key,
        layer=layer,
        use_rep=use_rep,
        normalize=normalize,
        n_top_genes=n_top_genes,
        drop_missing=drop_missing,
    )
    other = (
        None
        if other_key is None
        else encode_second_labels(adata, other_key, inputs.labels.classes, inputs.cell_mask)
    )
    p = TrainingParams(**params)
    steps = _dynamics(
        inputs.X,
        inputs.labels.codes,
        inputs.labels.n_classes,
        p,
        device=device,
        other_codes=other,
    )
    return run_steps(steps, progress, total=p.epochs)


def compare_annotations(adata: AnnData, label_key: str, other_key: str, **kwargs) -> pd.DataFrame:
    """Train on one annotation while recording a second one (METHOD 1.7).

    Writes ``obs[f"conf_{label_key}"]``/``obs[f"var_{label_key}"]`` for the annotation
    trained on and ``obs[f"conf_{other_key}"]``/``obs[f"var_{other_key}"]`` for the
    second one (an audit's ``obs[f"{label_key}_conf"]`` is left alone), and returns the
    four columns as a table (NaN for left-out cells).

    Parameters
    ----------
    adata, label_key
        Data and the annotation the network trains on.
    other_key
        The second annotation (same class set).
    **kwargs
        As for :func:`training_dynamics` (input, preprocessing, device, training).
    """
    record = training_dynamics(adata, label_key, other_key=other_key, **kwargs)
    # the cells used: all, or those with a label when drop_missing=True
    mask = adata.obs[label_key].notna().to_numpy()
    conf, var = confidence_and_variability(record.probabilities)
    conf_b, var_b = confidence_and_variability(record.other_probabilities)
    table = pd.DataFrame(
        {
            f"conf_{label_key}": _expand(conf, mask, np.nan),
            f"var_{label_key}": _expand(var, mask, np.nan),
            f"conf_{other_key}": _expand(conf_b, mask, np.nan),
            f"var_{other_key}": _expand(var_b, mask, np.nan),
        },
        index=adata.obs_names,
    )
    for column in table.columns:
        adata.obs[column] = table[column].to_numpy()
    return table


def corrected_labels(adata: AnnData, label_key: str) -> pd.Series:
    """The annotation with the suggested corrections applied (the original is untouched).

    Raises a clear error when :func:`annotate` has not written suggestions yet.
    """
    key = io.suggestion_key(label_key)
    if key not in adata.obs.columns:
        raise AnnotatabilityInputError(
            f"No suggestions in adata.obs[{key!r}]; run annotate(adata, {label_key!r}) first."
        )
    original = adata.obs[label_key].astype(object)
    suggested = adata.obs[key].astype(object)
    merged = original.where(suggested.isna(), suggested)
    categories = sorted(set(merged.dropna().astype(str)))
    return pd.Series(
        pd.Categorical(merged, categories=categories),
        index=adata.obs_names,
        name=f"{label_key}_corrected",
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
            adata.var[key] = _expand(values, scores.kept, np.nan)
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


def compute_gene_scores(
    adata: AnnData,
    *,
    label_key: str | None = None,
    conf_key: str | None = None,
    layer: str | None = None,
    min_counts: float = 100,
    power: float = 1,
    power_low: float = 1,
) -> GeneScoresResult:
    """Compute what :func:`gene_scores` writes, leaving ``adata`` unchanged."""
    from napari_annotatability.core.genes import gene_scores as _scores
    from napari_annotatability.core.inputs import select_matrix

    conf_key = confidence_key(adata, label_key, conf_key)
    X, _, _ = select_matrix(adata, layer=layer)
    scores = _scores(
        X, adata.obs[conf_key].to_numpy(), min_counts=min_counts, power=power, power_low=power_low
    )
    settings = {
        "conf_key": conf_key,
        "layer": layer or "X",
        "min_counts": float(min_counts),
        "power": float(power),
        "power_low": float(power_low),
    }
    return GeneScoresResult(scores=scores, settings=settings)


def gene_scores(
    adata: AnnData,
    *,
    label_key: str | None = None,
    conf_key: str | None = None,
    layer: str | None = None,
    min_counts: float = 100,
    power: float = 1,
    power_low: float = 1,
) -> pd.DataFrame:
    """Score genes by their association with annotation trainability (METHOD section 4).

    Writes ``var["conf_score_high"]``, ``var["conf_score_low"]`` and
    ``var["conf_score_mid"]`` (NaN for genes left out), ``var["conf_score_filtered"]``
    (why a gene was left out, empty when kept) and ``uns["annotatability_genes"]``.

    Parameters
    ----------
    adata
        Data with an audit (run :func:`annotate` first).
    label_key
        The audited annotation whose confidence to use (default: the only one audited).
    conf_key
        Another confidence column to use instead (e.g. the reference's ``"conf"``).
    layer
        Score ``adata.layers[layer]`` instead of ``X`` (e.g. raw counts).
    min_counts, power, power_low
        As in the reference: genes with a column sum below ``min_counts`` are left out.

    Returns
    -------
    A ranked table with columns ``gene``, ``score``, ``direction`` (``high``: expressed
    where annotations are learned confidently; ``low``: where they are not).
    """
    return compute_gene_scores(
        adata,
        label_key=label_key,
        conf_key=conf_key,
        layer=layer,
        min_counts=min_counts,
        power=power,
        power_low=power_low,
    ).write(adata)


def confidence_key(adata: AnnData, label_key: str | None, conf_key: str | None) -> str:
    """The confidence column to use: ``conf_key``, else that of the audit of ``label_key``."""
    if conf_key is None:
        return io.conf_key(audited_key(adata, label_key))
    if conf_key not in adata.obs.columns:
        raise AnnotatabilityInputError(
            f"No confidence in adata.obs[{conf_key!r}]; run annotate(adata, label_key) "
            "(CLI: napari-annotatability score) first, or leave conf_key out."
        )
    return conf_key


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


def trainability_graph(
    adata: AnnData,
    *,
    label_key: str | None = None,
    conf_key: str | None = None,
    use_rep: str = "X_pca",
    alpha: float = 0.9,
    k: int = 15,
    key_added: str = "trainability",
    mean_distance: str = "auto",
    overwrite: bool = False,
) -> None:
    """Build the trainability-aware kNN graph (METHOD section 5) where scanpy finds it.

    Writes ``obsp[f"{key_added}_connectivities"]``, ``obsp[f"{key_added}_distances"]`` and
    ``uns[key_added]`` in the layout of ``sc.pp.neighbors``, so that
    ``sc.tl.umap(adata, neighbors_key=key_added)`` and ``sc.tl.leiden(adata,
    neighbors_key=key_added)`` use it. Computes PCA with scanpy when ``use_rep`` is
    ``"X_pca"`` and missing.

    Parameters
    ----------
    adata
        Data with an audit (run :func:`annotate` first).
    label_key, conf_key
        The audited annotation whose confidence to use (default: the only one audited),
        or another confidence column.
    use_rep
        The embedding in ``obsm``.
    alpha, k
        Mixing weight of embedding distance vs confidence-rank distance; neighbours.
    key_added
        Name of the graph; an existing one is kept unless ``overwrite``.
    mean_distance
        ``"exact"`` (O(n^2 d) time, O(n) memory), ``"estimate"`` (random pairs; the relative
        error is recorded) or ``"auto"`` (exact up to 50,000 cells).
    overwrite
        Replace an existing graph of that name.
    """
    compute_trainability_graph(
        adata,
        label_key=label_key,
        conf_key=conf_key,
        use_rep=use_rep,
        alpha=alpha,
        k=k,
        key_added=key_added,
        mean_distance=mean_distance,
        overwrite=overwrite,
    ).write(adata)


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


def compute_trainability_graph(
    adata: AnnData,
    *,
    label_key: str | None = None,
    conf_key: str | None = None,
    use_rep: str = "X_pca",
    alpha: float = 0.9,
    k: int = 15,
    key_added: str = "trainability",
    mean_distance: str = "auto",
    overwrite: bool = False,
) -> GraphResult:
    """Compute what :func:`trainability_graph` writes, leaving ``adata`` unchanged."""
    from napari_annotatability.core import graph as g

    conf_key = confidence_key(adata, label_key, conf_key)
    if key_added in adata.uns and not overwrite:
        raise AnnotatabilityInputError(
            f"adata.uns[{key_added!r}] already holds a graph; choose another key_added "
            "(CLI: --key-added) or pass overwrite=True (CLI: --overwrite)."
        )
    if mean_distance not in ("auto", "exact", "estimate"):
        raise AnnotatabilityInputError(
            f"mean_distance must be 'auto', 'exact' or 'estimate'; got {mean_distance!r}."
        )
    pca = None
    if use_rep in adata.obsm:
        Z = np.asarray(adata.obsm[use_rep])
    elif use_rep == "X_pca":
        import scanpy as sc

        logger.warning("adata.obsm['X_pca'] is missing; computing PCA with scanpy.")
        pca = sc.pp.pca(adata.X, return_info=True)
        Z = np.asarray(pca[0])
    else:
        raise AnnotatabilityInputError(
            f"Embedding {use_rep!r} not found in adata.obsm; available: "
            f"{sorted(adata.obsm.keys()) or 'none'}."
        )
    exact = mean_distance == "exact" or (mean_distance == "auto" and adata.n_obs <= 50_000)
    dbar, rel_error = (
        (g.mean_pairwise_distance(Z), 0.0) if exact else g.estimate_mean_pairwise_distance(Z)
    )
    result = g.trainability_graph(
        Z, adata.obs[conf_key].to_numpy(), alpha=alpha, k=k, mean_distance=dbar
    )
    conn_key, dist_key = f"{key_added}_connectivities", f"{key_added}_distances"
    uns = {
        "connectivities_key": conn_key,
        "distances_key": dist_key,
        "params": {
            "n_neighbors": int(k),
            "method": "annotatability",
            "metric": "trainability-aware",
            "use_rep": use_rep,
            "alpha": float(alpha),
            "conf_key": conf_key,
            "mean_distance": float(dbar),
            "mean_distance_exact": bool(exact),
            "mean_distance_rel_error": float(rel_error),
        },
    }
    return GraphResult(
        key_added=key_added,
        connectivities=result.connectivities,
        distances=result.distances,
        uns=uns,
        pca=pca,
    )


# --- curation without napari ----------------------------------------------------------
#: Field separator of edits tables by file suffix.
TABLE_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def curate(adata: AnnData, label_key: str) -> Curation:
    """Start (or continue) curating ``adata.obs[label_key]``.

    Adds ``obs[f"{label_key}_curated"]`` (a copy of the annotation) and
    ``obs[f"{label_key}_reviewed"]`` unless they exist, and continues an edit log found in
    ``uns["annotatability_edits"]``.

    Parameters
    ----------
    adata
        The data; edits are written into it at once.
    label_key
        The annotation to curate (a categorical or text obs column).

    Returns
    -------
    A :class:`~napari_annotatability.core.curation.Curation`: ``relabel(positions,
    label)``, ``accept_suggestions(positions=None)``, ``keep(positions)``, ``undo()``,
    ``redo()``, ``log``.
    """
    return Curation(adata, label_key)


def table_separator(path: str | os.PathLike, sep: str | None = None) -> str:
    """The field separator of a table file: ``sep`` if given, else by suffix."""
    if sep is not None:
        return sep
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SEPARATORS:
        raise AnnotatabilityInputError(
            f"Cannot tell the table format of {str(path)!r} from its suffix "
            f"{suffix or '(none)'!r}; name it *.csv (comma) or *.tsv / *.txt (tab)."
        )
    return TABLE_SEPARATORS[suffix]


def export_curation(
    adata: AnnData,
    label_key: str,
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the curation as a CSV or TSV table, one row per cell, atomically.

    Columns: ``cell_id``, ``original``, ``curated``, ``mislabel_score``, ``conf``, ``var``,
    ``flag``, ``suggestion``, ``reviewed`` (empty where the data holds no value yet). The table
    is what :func:`apply_edits` (CLI: ``apply-edits``) replays on another copy of the data.

    Parameters
    ----------
    adata
        The data, curated or not (then ``curated`` equals ``original``).
    label_key
        The annotation.
    path
        Destination; ``.csv`` gives commas, ``.tsv`` and ``.txt`` tabs.
    sep
        Field separator, for other suffixes.
    overwrite
        Replace an existing file.

    Returns
    -------
    The destination path.
    """
    separator = table_separator(path, sep)
    table = export_table(adata, label_key)
    return io.write_csv_atomic(table, path, overwrite=overwrite, sep=separator)


def read_edits(path: str | os.PathLike) -> pd.DataFrame:
    """Read an edits table (CSV or TSV by suffix), every column as text.

    ``cell_id`` and the labels stay text exactly as written (``"01"``, ``"NA"``); only
    empty fields are missing. ``mislabel_score``, ``conf`` and ``var`` become numbers and
    ``reviewed`` booleans when all their values parse.

    Parameters
    ----------
    path
        A ``.csv`` (comma) or ``.tsv`` / ``.txt`` (tab) file with a header row that
        includes ``cell_id`` (e.g. from :func:`export_curation`).

    Returns
    -------
    The table.

    Raises
    ------
    AnnotatabilityInputError
        For a missing, empty or unparseable file, or one without a ``cell_id`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotatabilityInputError(
            f"Edits file {str(path)!r} "
            + ("is a folder" if path.is_dir() else "does not exist")
            + "; give the CSV/TSV table written by export-curation."
        )
    sep = table_separator(path)
    kind = "CSV" if sep == "," else "TSV"
    try:
        table = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",  # also files saved by spreadsheet programs
        )
    except pd.errors.EmptyDataError as err:
        raise AnnotatabilityInputError(
            f"Edits file {str(path)!r} is empty; it needs a header row (cell_id, curated, "
            "...) and one row per edited cell."
        ) from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise AnnotatabilityInputError(
            f"Could not read {str(path)!r} as a {kind} table: {type(err).__name__}: "
            f"{str(err).strip()}"
        ) from err
    table.columns = [str(c).strip() for c in table.columns]
    if "cell_id" not in table.columns:
        other = "\t" if sep == "," else ","
        hint = ""
        if len(table.columns) == 1 and other in table.columns[0]:
            hint = " It looks " + ("tab" if other == "\t" else "comma") + "-separated: "
            hint += "name it *.tsv." if other == "\t" else "name it *.csv."
        raise AnnotatabilityInputError(
            f"Edits file {str(path)!r} has no 'cell_id' column; columns: "
            f"{list(table.columns)}.{hint}"
        )
    if table.empty:
        raise AnnotatabilityInputError(
            f"Edits file {str(path)!r} has a header but no rows: nothing to apply."
        )
    for column in ("mislabel_score", "conf", "var"):
        if column in table.columns:
            with contextlib.suppress(ValueError, TypeError):
                table[column] = table[column].astype(float)  # exact, unlike the C parser
    if "reviewed" in table.columns:
        parsed = _parse_bool(table["reviewed"])
        if parsed is not None:
            table["reviewed"] = parsed
    return table


def _parse_bool(values: pd.Series) -> pd.Series | None:
    """Text such as True/False, 1/0, yes/no as booleans (missing: False); else ``None``."""
    if pd.api.types.is_bool_dtype(values):
        return values
    text = values.fillna("false").astype(str).str.strip().str.lower()
    if not text.isin(_TRUE | _FALSE).all():
        return None
    return text.isin(_TRUE)


def _prepare_edits(edits: pd.DataFrame, label_key: str, label_column: str | None) -> pd.DataFrame:
    """Drop what there is nothing to replay; refuse a column of measurements as labels."""
    column = edits_label_column(list(edits.columns), label_key, label_column)
    labels = edits[column]
    filled = labels.dropna()
    numbers = pd.to_numeric(filled.astype(str), errors="coerce") if filled.size else filled
    if pd.api.types.is_float_dtype(labels) or (
        filled.size and numbers.notna().all() and (numbers != numbers.round()).any()
    ):
        raise AnnotatabilityInputError(
            f"Column {column!r} of the edits holds decimal numbers (e.g. "
            f"{str(filled.iloc[0])!r}), not labels; name the label column with label_column "
            "(CLI: --label-column)."
        )
    edits = edits.assign(cell_id=edits["cell_id"].astype(str))
    if "original" in edits.columns:
        # cells without a label that were left without one: nothing to replay
        unlabelled = labels.isna() & edits["original"].isna()
        if unlabelled.any():
            logger.info("Skipping %d cells left without a label.", int(unlabelled.sum()))
            edits = edits[~unlabelled.to_numpy()]
    duplicated = edits["cell_id"].duplicated(keep="last")
    if duplicated.any():
        logger.info(
            "%d cells appear more than once in the edits; their last row counts.",
            int(duplicated.sum()),
        )
        edits = edits[~duplicated.to_numpy()]
    return edits


def apply_edits(
    adata: AnnData,
    label_key: str,
    edits: pd.DataFrame | str | os.PathLike,
    *,
    label_column: str | None = None,
    allow_new_labels: bool = False,
) -> Edit:
    """Replay a curation (``cell_id`` + curated label) on ``adata``, e.g. the full data.

    The curated labels go to ``obs[f"{label_key}_curated"]`` and are logged in
    ``uns["annotatability_edits"]``; the annotation itself is never changed. Cells whose
    label changes, and cells marked reviewed in a ``reviewed`` column, are marked
    reviewed. Everything is checked first; on bad input ``adata`` is left as it was.

    Parameters
    ----------
    adata
        The data to curate.
    label_key
        The annotation the edits were made on.
    edits
        A table, or the path of a CSV/TSV file (:func:`read_edits`), with ``cell_id``
        and the curated label; the exported table of :func:`export_curation` fits.
        Only the edited cells are needed. A cell listed twice takes its last row; cells
        without a label in both ``original`` and the curated column are skipped.
    label_column
        The column of the curated labels (default: ``curated``, else
        ``f"{label_key}_curated"``, else ``new``).
    allow_new_labels
        Accept labels that are not classes of the annotation (else an error names them).

    Returns
    -------
    The label edit applied (:class:`~napari_annotatability.core.curation.Edit`; its
    ``positions`` are the cells whose curated label changed).

    Raises
    ------
    AnnotatabilityInputError
        For cell ids not in ``adata``, empty labels, labels that are not classes (unless
        ``allow_new_labels``), a label column of decimal numbers, a missing column, or a
        label key that is missing or not a label column.
    """
    table = edits if isinstance(edits, pd.DataFrame) else read_edits(edits)
    table = _prepare_edits(table, label_key, label_column)
    obs = adata.obs
    added = [k for k in (curated_key(label_key), reviewed_key(label_key)) if k not in obs]
    try:
        edit = _apply_edits(
            adata,
            label_key,
            table,
            label_column=label_column,
            allow_new_labels=allow_new_labels,
        )
    except AnnotatabilityInputError:
        adata.obs = adata.obs.drop(columns=[k for k in added if k in adata.obs.columns])
        raise
    if "reviewed" in table.columns:
        reviewed = _parse_bool(table["reviewed"])
        if reviewed is None:
            logger.warning("The 'reviewed' column is not True/False; reviewed marks not replayed.")
        else:
            curation = Curation(adata, label_key)
            positions = adata.obs_names.get_indexer(
                table["cell_id"].to_numpy()[reviewed.to_numpy()]
            )
            marked = adata.obs[curation.reviewed].to_numpy(dtype=bool)
            positions = positions[~marked[positions]]
            if positions.size:
                curation.keep(positions)
    logger.info(
        "Applied %d edits to adata.obs[%r]: %d cells changed label.",
        len(table),
        curated_key(label_key),
        edit.n_changed,
    )
    return edit
