"""Run long work in a napari worker thread, or in the calling thread for scripts and tests.

Both ways call the same callbacks, on the main thread, in the same order: ``yielded`` for
each value a generator yields, then ``returned`` (or ``errored``), then ``finished``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

from napari.qt.threading import WorkerBase, create_worker

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.steps import drain

logger = logging.getLogger(__name__)


def start_task(
    function: Callable,
    *args,
    threaded: bool,
    progress: dict,
    returned: Callable,
    errored: Callable,
    finished: Callable,
    yielded: Callable | None = None,
    aborted: Callable | None = None,
    **kwargs,
) -> WorkerBase | None:
    """Run ``function(*args, **kwargs)`` and report to the callbacks.

    Parameters
    ----------
    function
        A function, or a generator function whose yields report progress.
    *args, **kwargs
        Its arguments.
    threaded
        Start a napari worker (napari's progress bar from ``progress``; ``quit()``
        cancels at the next yield) and return it. Otherwise run here and return
        ``None``; here only :class:`AnnotatabilityInputError` goes to ``errored``, any
        other exception propagates (a bug, not a bad choice).
    progress
        napari's ``_progress`` options (``desc``, ``total``).
    returned, errored, finished, yielded, aborted
        The callbacks (``aborted`` only happens in a worker).
    """
    connect = {"returned": returned, "errored": errored, "finished": finished}
    if yielded is not None:
        connect["yielded"] = yielded
    if aborted is not None:
        connect["aborted"] = aborted
    if threaded:
        worker = create_worker(
            function, *args, _progress=progress, _start_thread=False, _connect=connect, **kwargs
        )
        worker.start()  # its signals reach the main thread after the caller returns
        return worker
    try:
        result = function(*args, **kwargs)
        if inspect.isgenerator(result):
            result = drain(result, yielded)
    except AnnotatabilityInputError as error:
        errored(error)
    else:
        returned(result)
    finally:
        finished()
    return None


def failure_message(error: Exception, what: str) -> str:
    """What to tell a person when a task failed: a bad input as it is, a bug with its type.

    Unexpected errors (bugs) are logged with their traceback.
    """
    if isinstance(error, AnnotatabilityInputError):
        return str(error)
    logger.error("%s failed", what, exc_info=error)
    return f"{what} failed: {type(error).__name__}: {error}"
