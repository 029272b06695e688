"""The backend benchmark's bookkeeping: every model and entry measured on every backend, its README table."""

from __future__ import annotations

import json

from tests.helpers import packaged_names
from tools import bench_backends as bench


def _results() -> dict:
    return json.loads(bench.RESULTS.read_text())


def test_every_model_and_packaged_entry_is_measured_on_every_backend():
    results = _results()
    packaged = set(packaged_names())
    for backend in bench.BACKENDS:
        assert {r["model"] for r in results["rows"][backend]} == set(bench.MODELS), backend
        assert {r["weights"] for r in results["loads"][backend]} == packaged, backend


def test_readme_table_is_the_one_the_results_give():
    """README.md shows the table docs/backends.json gives (python -m tools.bench_backends --readme)."""
    readme = (bench.ROOT / "README.md").read_text()
    section = readme.split("<!-- backends:start -->", 1)[1].split("<!-- backends:end -->", 1)[0]
    assert section == "\n" + bench.table(_results())


def test_flops_count_a_known_network():
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    assert bench.forward_flops(model) == 2 * (8 * 8 * 4 * 3 * 3 * 3) + 2 * (256 * 10)


def test_recorded_loads_on_jax_and_torch_are_within_one_and_a_half_tensorflow_times():
    loads = {b: {r["weights"]: r for r in _results()["loads"][b]} for b in bench.BACKENDS}
    for backend in ("jax", "torch"):
        for name, row in loads[backend].items():
            base = loads["tensorflow"][name]
            assert row["first_s"] <= 1.5 * base["first_s"] and row["again_s"] <= 1.5 * base["again_s"], (
                backend,
                name,
            )
