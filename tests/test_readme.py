"""The README's generated tables are current, and CI runs the README's test command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_model_table_is_current():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "update_readme.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "<!-- test-command -->" in readme
    assert "README.md" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_transfer_example_runs_as_written(tmp_path):
    """The README's transfer-learning snippet is complete: it runs in a fresh process."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- transfer-example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    env = {**os.environ, "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "['probe', 'fine-tune'" in proc.stdout
