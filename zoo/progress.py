"""Progress bars for long loops over data: on stderr, and only where stderr is a terminal.

Piped or captured output (``--json``, logs, tests) stays free of them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

#: Seconds between two redraws of a bar.
MIN_INTERVAL = 0.5


def batch_count(dataset: Any) -> int | None:
    """How many batches ``dataset`` yields, where that is known without reading it.

    Args:
        dataset: A ``tf.data`` dataset (its cardinality), a sized collection, or any iterable.

    Returns:
        The count, or ``None`` when unknown (an iterator, a filtered ``tf.data`` dataset).
    """
    cardinality = getattr(dataset, "cardinality", None)
    if callable(cardinality):
        count = int(cardinality())
        return count if count >= 0 else None  # tf.data: -1 infinite, -2 unknown
    try:
        return len(dataset)
    except TypeError:
        return None


def progress(
    iterable: Iterable[T],
    desc: str,
    *,
    total: int | None = None,
    unit: str = "batch",
    file: TextIO | None = None,
) -> Iterator[T]:
    """Yield from ``iterable`` with a progress bar on ``file`` (stderr), drawn only on a terminal.

    Args:
        iterable: What the loop goes over.
        desc: What the loop does, shown before the bar ("evaluating").
        total: How many items it holds (default: :func:`batch_count` of it, where known).
        unit: The name of one item.
        file: The stream to draw on (default: ``sys.stderr``); a stream that is not a
            terminal gets no bar.

    Yields:
        The items of ``iterable``, unchanged.
    """
    from tqdm import tqdm

    stream = file if file is not None else sys.stderr
    shown = bool(getattr(stream, "isatty", lambda: False)())
    count = total if total is not None else batch_count(iterable)
    with tqdm(
        iterable,
        desc=desc,
        total=count,
        unit=unit,
        file=stream,
        disable=not shown,
        leave=False,
        mininterval=MIN_INTERVAL,
        dynamic_ncols=True,
    ) as bar:
        yield from bar
