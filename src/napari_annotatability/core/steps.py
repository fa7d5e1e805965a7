"""Step generators: long work that yields one progress update per step and returns a result.

Every long computation of the package (training, the label evidence, an audit) is a
generator, so that callers can report progress and cancel between steps. Two functions
drive them: :func:`relay` passes the updates on (changed by a function) and returns the
result, :func:`drain` runs one to its end. Both close the generator however they stop.
:func:`run_steps` drains with a progress bar or a callback; :class:`StepCounter` numbers
the updates of consecutive phases.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

Update = TypeVar("Update")
Result = TypeVar("Result")


def relay(
    steps: Generator[Update, None, Result], change: Callable[[Update], object]
) -> Generator[object, None, Result]:
    """Yield ``change(update)`` for each update of ``steps``; return its result."""
    try:
        update = next(steps)
        while True:
            yield change(update)
            update = next(steps)
    except StopIteration as stop:
        return stop.value
    finally:
        steps.close()


def drain(
    steps: Generator[Update, None, Result], report: Callable[[Update], object] | None = None
) -> Result:
    """Run ``steps`` to its end, calling ``report`` on each update; return its result."""
    driven = relay(steps, (lambda update: update) if report is None else report)
    try:
        while True:
            next(driven)
    except StopIteration as stop:
        return stop.value
    finally:
        driven.close()


class StepCounter:
    """Adds overall ``step``/``total_steps`` to the progress of consecutive phases.

    The updates need ``step`` and ``total_steps`` attributes (e.g.
    :class:`~napari_annotatability.core.dynamics.EpochProgress`).
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def wrap(self, phase: Generator[Update, None, Result]):
        """Pass the updates of ``phase`` on, counted; return its result."""
        return relay(phase, self._count)

    def _count(self, update):
        self.done += 1
        update.step, update.total_steps = self.done, self.total
        return update

    def skip(self, n: int) -> None:
        """Count ``n`` steps that will not run (a phase skipped)."""
        self.done += n


def run_steps(
    steps: Generator[Update, None, object],
    progress: bool | Callable[[Update], None] = False,
    *,
    total: int | None = None,
):
    """Run a step generator to its end, reporting progress; returns its result.

    ``progress``: ``True`` for a tqdm bar (the updates need ``phase``, ``loss`` and
    ``total_steps``), a callable receiving each update, or ``False``.
    """
    if progress is not True:
        return drain(steps, progress if callable(progress) else None)
    from tqdm.auto import tqdm

    bar = None

    def advance(update: Update) -> None:
        nonlocal bar
        if bar is None:  # created at the first update, once the total is known
            bar = tqdm(total=update.total_steps or total, unit="epoch", dynamic_ncols=True)
        bar.set_description(update.phase, refresh=False)
        bar.set_postfix(loss=f"{update.loss:.3f}", refresh=False)
        bar.update(1)

    try:
        return drain(steps, advance)
    finally:
        if bar is not None:
            bar.close()
