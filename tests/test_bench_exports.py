"""The export benchmark's bookkeeping: its cells, its README table."""

from __future__ import annotations

from tests.helpers import packaged_names
from tools import bench_exports as bench


def test_the_benchmark_covers_every_packaged_entry():
    assert set(bench.ENTRIES) == set(packaged_names()), (
        "add the new entry to tools/bench_exports.py's ENTRIES"
    )


def test_every_packaged_entry_has_a_row_for_each_of_its_formats():
    results = bench.load_results()
    for name in bench.ENTRIES:
        for fmt in bench.formats_of(name):
            assert f"{name}/{fmt}" in results["cells"], f"{name}/{fmt} not measured"


def test_readme_table_is_the_one_the_results_give():
    """README.md shows the table docs/exports.json gives (python -m tools.bench_exports --readme)."""
    results = bench.load_results()
    readme = (bench.ROOT / "README.md").read_text()
    section = readme.split(bench.START, 1)[1].split(bench.END, 1)[0]
    assert bench.table(results) in section


def test_float_exports_match_and_text_exports_take_token_ids():
    cells = bench.load_results()["cells"]
    from zoo.export import TOLERANCE

    for key, cell in cells.items():
        quantize = key.split("/")[1].partition("-")[2].partition("-")[0] or None  # int8-qat: int8
        if cell["status"] != "ok":
            continue
        if TOLERANCE[quantize] is None:  # int8, dynamic: compared through top-1 agreement
            assert cell["top1_agreement"] > 50, key
        elif cell["max_abs_diff"] is not None:
            assert cell["max_abs_diff"] <= TOLERANCE[quantize], key
    assert cells["lstm_classifier.mr/onnx"]["status"] == "ok"
    assert cells["efficientnet_lite0.in1k/onnx"]["status"] == "ok"
