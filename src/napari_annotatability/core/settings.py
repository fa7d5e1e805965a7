"""The numeric settings of an audit: one definition for the API, the widgets and the CLI.

Each :class:`Setting` gives the default, the range a person may choose from and the words
that explain it. :func:`~napari_annotatability.api.annotate` takes its defaults from here,
the dock widgets build their spin boxes from here and the command line its options, so
a default is written once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One numeric setting of an audit.

    Attributes
    ----------
    name
        The keyword argument of :func:`~napari_annotatability.api.annotate`.
    default
        Its default (an ``int`` for whole numbers, a ``float`` otherwise).
    help
        What it does, in a few words (tooltips and ``--help``).
    label
        Its label in the widgets.
    minimum, maximum
        The range offered in the widgets.
    step
        The spin box step of a ``float`` setting.
    """

    name: str
    default: int | float
    help: str
    label: str
    minimum: float
    maximum: float
    step: float | None = None

    @property
    def option(self) -> str:
        """The command-line option, e.g. ``--batch-size``."""
        return "--" + self.name.replace("_", "-")


SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("epochs", 50, "training epochs of each network", "epochs", 1, 10_000),
        Setting("momentum", 0.9, "SGD momentum", "momentum", 0.0, 0.999, 0.01),
        Setting("batch_size", 256, "cells per optimiser step", "batch size", 1, 1_000_000),
        Setting(
            "min_width",
            64,
            "lower bound of the hidden widths (0: the reference's widths)",
            "min hidden width",
            0,
            100_000,
        ),
        Setting(
            "min_steps",
            5,
            "optimiser steps per epoch at least: sections of fewer batches of cells get "
            "more than one pass over them (0: one pass)",
            "min steps per epoch",
            0,
            100_000,
        ),
        Setting("seed", 0, "seed of every network and random draw", "seed", 0, 2**31 - 1),
        Setting(
            "spatial_neighbours",
            10,
            "tissue neighbours whose labels the label evidence weighs (0: expression only)",
            "tissue neighbours",
            0,
            1000,
        ),
        Setting("n_folds", 5, "out-of-fold models of the label evidence", "folds", 2, 50),
        Setting(
            "noise_rate",
            0.05,
            "fraction of labels moved by the noise injection that calibrates the flags",
            "noise rate",
            0.001,
            0.5,
            0.01,
        ),
        Setting(
            "percentile",
            90.0,
            "percentile of the injected errors' conf and var: the dynamics flags' cut-offs",
            "percentile",
            1.0,
            100.0,
            1.0,
        ),
        Setting(
            "suggest_epochs",
            100,
            "epochs of the network suggesting corrections (flags from training dynamics)",
            "suggestion epochs",
            1,
            10_000,
        ),
    )
}


def default(name: str) -> int | float:
    """The default of setting ``name``."""
    return SETTINGS[name].default
