"""Spin boxes built from the one definition of the audit settings (core/settings.py)."""

from __future__ import annotations

from magicgui.widgets import FloatSpinBox, SpinBox

from napari_annotatability.core.settings import SETTINGS


def setting_box(name: str, **changes) -> SpinBox | FloatSpinBox:
    """A spin box for setting ``name``: its label, default, range and help as tooltip.

    ``changes`` override any of them (e.g. ``label="retrain epochs"``).
    """
    setting = SETTINGS[name]
    options = {
        "label": setting.label,
        "value": setting.default,
        "min": setting.minimum,
        "max": setting.maximum,
        "tooltip": setting.help,
    }
    if isinstance(setting.default, float):
        return FloatSpinBox(step=setting.step, **{**options, **changes})
    whole = {k: int(v) if k in ("value", "min", "max") else v for k, v in options.items()}
    return SpinBox(**{**whole, **changes})
