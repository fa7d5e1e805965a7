"""Audit an annotation: :func:`annotate` and the step generator behind it."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Generator

import numpy as np
from anndata import AnnData

from napari_annotatability.core.device_data import resolve_device
from napari_annotatability.core.dynamics import (
    DEFAULT_MIN_STEPS,
    REFERENCE_TRAINING,
    EpochProgress,
    TrainingParams,
    fit_and_predict,
)
from napari_annotatability.core.dynamics import training_dynamics as _dynamics
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.evidence import Embedding, EvidenceParams, embed, label_evidence
from napari_annotatability.core.evidence_calibration import calibration_runs, calibration_scores
from napari_annotatability.core.flag_calibration import calibrate as calibrate_evidence
from napari_annotatability.core.flag_calibration import (
    count_is_uncertain,
    describe_errors,
    evidence_flags,
    uncertainty_note,
)
from napari_annotatability.core.inputs import TrainingInputs, prepare_inputs
from napari_annotatability.core.results import AnnotatabilityResult
from napari_annotatability.core.scores import (
    EASY_CONF,
    EASY_VAR,
    HARD,
    Cutoffs,
    assign_flags,
    confidence_and_variability,
    inject_label_noise,
    noise_cutoffs,
)
from napari_annotatability.core.settings import default
from napari_annotatability.core.steps import StepCounter, run_steps

logger = logging.getLogger(__name__)


#: The reference package's settings where our defaults differ:
#: ``annotate(adata, key, **REFERENCE_SETTINGS)`` trains as it does (learning rate,
#: hidden widths, one pass per epoch) and flags from the training dynamics with its
#: noise-injection cut-offs, suggesting corrections with a fresh network, as it does.
REFERENCE_SETTINGS: dict = {**REFERENCE_TRAINING, "flags": "dynamics"}

#: Seed offsets of the extra networks, so each run of one seed is reproducible.
_CALIBRATION_SEED_OFFSET = 1
_SUGGESTION_SEED_OFFSET = 2


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
    epochs: int = default("epochs"),
    lr: float | str = "auto",
    momentum: float = default("momentum"),
    batch_size: int = default("batch_size"),
    depth: int = 3,
    weighted_sampler: bool = True,
    seed: int = default("seed"),
    device: str = "auto",
    min_width: int | None = default("min_width"),
    min_steps: int | None = DEFAULT_MIN_STEPS,
    flags: str = "evidence",
    spatial_neighbours: int = default("spatial_neighbours"),
    n_folds: int = default("n_folds"),
    calibrate: bool = True,
    noise_rate: float = default("noise_rate"),
    percentile: float = default("percentile"),
    easy_conf: float = EASY_CONF,
    easy_var: float = EASY_VAR,
    suggest: bool = True,
    suggest_epochs: int = default("suggest_epochs"),
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
    counter = StepCounter(
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
        if count_is_uncertain(evidence_cutoffs.method, evidence_cutoffs.separation):
            logger.warning(
                "The count of wrong labels is %s: either many labels are wrong or the "
                "expression barely predicts them, and the data cannot tell which. Check a "
                "sample of the Hard-to-learn cells before acting on them.",
                uncertainty_note(
                    evidence_cutoffs.separation,
                    evidence.label_accuracy,
                    evidence.commonest_share,
                ),
            )
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
    epochs: int = default("epochs"),
    calibrate: bool = True,
    flags: str = "evidence",
    noise_rate: float = default("noise_rate"),
    suggest: bool = True,
    suggest_epochs: int = default("suggest_epochs"),
    **_other,
) -> int:
    """Progress steps of an audit of ``n_cells`` cells (as :func:`annotate_steps` counts).

    Epochs of each training, plus one step per fit of the label evidence (the
    embedding, each number of components and penalty, each EM iteration; each
    calibration run refits once and iterates again, and small data repeat it,
    :func:`~napari_annotatability.core.evidence_calibration.calibration_runs`). Other keyword
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
