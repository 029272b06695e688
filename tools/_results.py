"""Shared by the benchmark tools: timing, a JSON file of measured cells and a README section."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from zoo.fileio import write_json


def best_time(fn: Callable[[], object], repeats: int = 3, warmup: bool = False) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds (after one untimed call if ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def load_cells(path: Path) -> dict:
    """The results file at ``path`` (``{"cells": {}}`` before the first run)."""
    return json.loads(path.read_text()) if path.exists() else {"cells": {}}


def save_cell(path: Path, results: dict, key: str) -> None:
    """Write the cell ``key`` of ``results`` into the file, atomically, keeping every other cell there.

    Another run may have measured cells since this one started: only ``key`` is taken from here.
    """
    merged = load_cells(path)
    merged.update({k: v for k, v in results.items() if k != "cells"})
    merged["cells"][key] = results["cells"][key]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, merged, indent=1)


def write_section(readme: Path, start: str, end: str, body: str) -> None:
    """Replace what README.md holds between the markers ``start`` and ``end`` with ``body``."""
    head, rest = readme.read_text().split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + body + end + tail)
