"""Long loops over data draw a progress bar on stderr, and only where stderr is a terminal."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from tests.helpers import DATA_DIR
from zoo.progress import batch_count, progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_is_drawn_on_a_terminal_only():
    terminal, pipe = _Terminal(), io.StringIO()
    assert list(progress(range(3), "evaluating", file=terminal)) == [0, 1, 2]
    assert "evaluating" in terminal.getvalue() and "0/3" in terminal.getvalue()
    assert list(progress(iter(range(3)), "evaluating", file=pipe)) == [0, 1, 2]
    assert pipe.getvalue() == ""


def test_batch_count_of_datasets_lists_and_iterators():
    tf = pytest.importorskip("tensorflow")
    data = tf.data.Dataset.range(10).batch(4)
    assert batch_count(data) == 3 and batch_count([1, 2]) == 2 and batch_count(iter([1])) is None
    assert batch_count(data.filter(lambda x: True)) is None  # tf.data cannot count a filter's output


@pytest.mark.skipif(not DATA_DIR.is_dir() or sys.platform == "win32", reason="needs MNIST and a pty")
def test_zoo_evaluate_shows_its_progress_on_a_terminal():
    """`zoo evaluate` ran for minutes (an EfficientNet on 10,000 images) without a sign of life."""
    import fcntl
    import pty
    import struct
    import termios

    env = {**os.environ, "ZOO_DATA_DIR": str(DATA_DIR)}
    command = [sys.executable, "-m", "zoo", "evaluate", "lenet5"]
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 wide
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=child, env=env) as run:
        os.close(child)
        shown = b""
        while True:
            try:
                chunk = os.read(parent, 4096)
            except OSError:  # the pty closes when the command exits
                break
            if not chunk:
                break
            shown += chunk
        out = run.stdout.read().decode()
    os.close(parent)
    assert run.returncode == 0 and "top1_accuracy    99.33" in out
    assert b"evaluating" in shown and b"/40 " in shown  # 10,000 images in batches of 256
    piped = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert "evaluating" not in piped.stderr
