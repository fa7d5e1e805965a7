"""Step generators: long work that yields one progress update per step and returns a result.

Every long computation of the package (training, the label evidence, an audit) is a
generator, so that callers can report progress and cancel between steps. Two functions
drive them: :func:`relay` passes the updates on (changed by a function) and returns the
result, :func:`drain` runs one to its end. Both close the generator however they stop.
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
