"""The strategy benchmark's bookkeeping: its verdicts, its README table and its digits folder."""

from __future__ import annotations

import pytest

from tools import bench_strategies as bench


def _cells(row: dict[str, float], task: str = "lenet5-digits", size: int = 100) -> dict:
    return {
        bench._key(task, size, s): {"top1_accuracy": v, "held_out": 797, "seconds": 1.0}
        for s, v in row.items()
    }


def test_verdicts_apply_both_bars():
    base = {"probe": 90.0, "head": 80.0, "full": 91.0, "scratch": 70.0}
    assert bench.verdicts(_cells({**base, "default": 90.0}), "lenet5-digits", 100) == ("met", 1.0)
    assert bench.verdicts(_cells({**base, "default": 89.9}), "lenet5-digits", 100)[0] == "missed"
    below_scratch = {**base, "scratch": 95.0, "default": 94.5}
    assert bench.verdicts(_cells(below_scratch), "lenet5-digits", 100)[0] == "missed"
    assert bench.verdicts(_cells(base), "lenet5-digits", 100) == ("incomplete", None)
    best_but_low = {"default": 70.0, "probe": 69.0, "head": 60.0, "full": 68.0, "scratch": 50.0}
    verdict = bench.verdicts(_cells(best_but_low, "minilm-mr", 400), "minilm-mr", 400)
    assert verdict == ("missed (not above 75%)", 0.0)


def test_readme_table_is_the_one_the_results_give():
    """README.md shows the table docs/strategies.json gives (python -m tools.bench_strategies --readme)."""
    results = bench.load_results()
    readme = (bench.ROOT / "README.md").read_text()
    section = readme.split(bench.START, 1)[1].split(bench.END, 1)[0]
    assert bench.table(results) in section


@pytest.mark.slow
def test_digits_folder_is_a_fixed_split_of_scikit_learn_digits(tmp_path):
    folder = bench.digits_folder(tmp_path)
    test = sorted(p.name for p in (folder / "test").rglob("*.png"))
    train = sorted(p.name for p in (folder / "train").rglob("*.png"))
    assert len(test) == bench.TEST_DIGITS and len(test) + len(train) == 1797
    assert not set(test) & set(train)
    assert sorted(p.name for p in (folder / "test").iterdir()) == [str(d) for d in range(10)]
    again = bench.digits_folder(tmp_path / "again")
    assert sorted(p.name for p in (again / "test").rglob("*.png")) == test


def test_a_saved_cell_keeps_the_cells_other_runs_wrote(tmp_path, monkeypatch):
    """Two runs at once: each writes only the cell it measured, never its stale copy of the rest."""
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "strategies.json")
    first, second = bench.load_results(), bench.load_results()  # both start from an empty file
    first["cells"]["a/1/probe"] = {"top1_accuracy": 1.0}
    bench.save_results(first, "a/1/probe")
    second["cells"]["b/1/probe"] = {"top1_accuracy": 2.0}
    second["cells"]["a/1/probe"] = {"top1_accuracy": -1.0}  # stale: not measured by this run
    bench.save_results(second, "b/1/probe")
    assert bench.load_results()["cells"] == {
        "a/1/probe": {"top1_accuracy": 1.0},
        "b/1/probe": {"top1_accuracy": 2.0},
    }
