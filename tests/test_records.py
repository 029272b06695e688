"""make_record builds every weights-manifest record: one shape, one key order, validated where made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.errors import ManifestError
from zoo.weights.manifest import WeightsEntry, dumps_manifest, file_record, parse_manifest
from zoo.weights.records import golden_record, make_record

ROOT = Path(__file__).resolve().parents[1]

#: The manifest's key order; converter, golden, library_versions and notes are optional.
ORDER = [
    "architecture",
    "tag",
    "default",
    "description",
    "files",
    "sources",
    "converter",
    "builder_kwargs",
    "input_shape",
    "num_classes",
    "labels",
    "preprocessing",
    "dataset",
    "metrics",
    "references",
    "num_params",
    "license",
    "recipe",
    "golden",
    "library_versions",
    "notes",
]
OPTIONAL = ("converter", "golden", "library_versions", "notes")
METRIC = {
    "name": "m",
    "value": 1.0,
    "split": "test",
    "command": "c",
    "dataset": "d",
    "higher_is_better": True,
}


def _manifest_records() -> dict[str, dict]:
    return json.loads((ROOT / "weights_manifest.json").read_text(encoding="utf-8"))["weights"]


@pytest.fixture
def files(tmp_path):
    weights = tmp_path / "lenet5.test.weights.h5"
    weights.write_bytes(b"not really weights, only hashed here")
    golden = tmp_path / "lenet5.test.golden.npz"
    golden.write_bytes(b"not really a golden pair either")
    return weights, golden


def _fields(weights: Path, **changes) -> dict:
    fields = {
        "architecture": "lenet5",
        "tag": "test",
        "default": True,
        "description": "test weights",
        "files": [file_record(weights, "keras.weights.h5")],
        "sources": [{"type": "package", "path": "pretrained/lenet5.test"}],
        "builder_kwargs": {},
        "input_shape": [32, 32, 1],
        "num_classes": 10,
        "labels": [str(i) for i in range(10)],
        "preprocessing": {"type": "image", "color_mode": "grayscale", "scale": 1 / 255},
        "dataset": {"name": "mnist", "split": "test"},
        "metrics": [],
        "references": [],
        "num_params": 61706,
        "license": "CC-BY-SA-3.0",
        "recipe": {"command": "pytest"},
    }
    return {**fields, **changes}


def test_make_record_builds_a_record_that_loads(files):
    weights, _ = files
    record = make_record(**_fields(weights))
    entry = WeightsEntry.from_dict("lenet5.test", record)
    assert entry.name == "lenet5.test" and entry.files[0].sha256 == file_record(weights, "x")["sha256"]
    assert list(record) == [k for k in ORDER if k not in OPTIONAL]  # optional keys only when given
    assert entry.to_dict() == record
    assert parse_manifest({"schema_version": 1, "weights": {"lenet5.test": record}})


def test_optional_keys_appear_in_the_manifest_order_when_given(files):
    weights, golden = files
    record = make_record(
        **_fields(weights),
        notes="some notes",
        library_versions={"keras": "3.0.0"},
        golden=golden_record(golden, atol=1e-4),
        converter="bert_hf_safetensors",
    )
    assert list(record) == ORDER
    assert record["golden"] == {
        **{k: v for k, v in file_record(golden, "npz").items() if k != "format"},
        "atol": 1e-4,
    }
    assert WeightsEntry.from_dict("lenet5.test", record).to_dict() == record
    assert "notes" in make_record(**_fields(weights), notes="")  # given is given, even empty


def test_the_record_is_plain_json_and_shares_nothing_with_its_arguments(files):
    weights, _ = files
    kwargs = {"depth": {"blocks": [1, 2]}}
    entry = WeightsEntry.from_dict("lenet5.test", make_record(**_fields(weights, builder_kwargs=kwargs)))
    # read-only entry fields (mapping proxies, tuples) go in as they are and come out as dicts and lists
    record = make_record(
        **_fields(weights, builder_kwargs=entry.builder_kwargs, labels=entry.labels, input_shape=(32, 32, 1))
    )
    assert record["builder_kwargs"] == {"depth": {"blocks": [1, 2]}}
    assert type(record["builder_kwargs"]["depth"]) is dict and type(record["labels"]) is list
    assert record["input_shape"] == [32, 32, 1]
    json.dumps(record)
    record["builder_kwargs"]["depth"]["blocks"].append(3)
    assert kwargs == {"depth": {"blocks": [1, 2]}}


def test_a_missing_argument_is_refused_by_the_signature(files):
    weights, _ = files
    fields = _fields(weights)
    del fields["license"]
    with pytest.raises(TypeError, match="license"):
        make_record(**fields)
    with pytest.raises(TypeError):
        make_record("lenet5", "test")  # keyword-only


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("files", [], "at least one file"),
        ("sources", [], "at least one file and one source"),
        ("dataset", {"name": "mnist"}, "missing keys \\['split'\\]"),
        ("recipe", {"notes": "no command"}, "missing keys \\['command'\\]"),
        ("sources", [{"type": "hf", "repo_id": "a/b"}], "missing keys \\['revision'\\]"),
        ("references", [{"name": "top1_accuracy", "value": 1.0}], "missing keys \\['citation'\\]"),
    ],
)
def test_a_missing_required_field_fails_with_manifest_error(files, field, value, message):
    weights, _ = files
    with pytest.raises(ManifestError, match=message):
        make_record(**_fields(weights, **{field: value}))


def test_a_missing_file_field_fails_with_manifest_error(files):
    weights, golden = files
    item = {k: v for k, v in file_record(weights, "keras.weights.h5").items() if k != "sha256"}
    with pytest.raises(ManifestError, match="files\\[0\\]: missing keys \\['sha256'\\]"):
        make_record(**_fields(weights, files=[item]))
    partial = {k: v for k, v in golden_record(golden, atol=1e-4).items() if k != "atol"}
    with pytest.raises(ManifestError, match="golden: missing keys \\['atol'\\]"):
        make_record(**_fields(weights), golden=partial)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"default": "yes"}, "default must be true or false"),
        ({"tag": "Test"}, "lower case"),
        ({"files": ["lenet5.test.weights.h5"]}, "expected an object, got str"),
        ({"sources": [{"type": "package", "path": "p", "extra": 1}]}, "unknown keys \\['extra'\\]"),
        ({"dataset": ["mnist", "test"]}, "expected an object, got list"),
        ({"labels": ["a", "b"]}, "labels must have num_classes entries"),
        ({"labels": 10}, "malformed record \\(TypeError"),
        ({"metrics": [{**METRIC, "value": "high"}]}, "value must be a number"),
    ],
)
def test_a_wrong_type_fails_with_manifest_error(files, changes, message):
    weights, _ = files
    with pytest.raises(ManifestError, match=message):
        make_record(**_fields(weights, **changes))


def test_a_wrong_file_size_type_fails_with_manifest_error(files):
    weights, _ = files
    item = {**file_record(weights, "keras.weights.h5"), "size": "36"}
    with pytest.raises(ManifestError, match="size must be a positive integer"):
        make_record(**_fields(weights, files=[item]))
    with pytest.raises(ManifestError, match="golden: expected an object"):
        make_record(**_fields(weights), golden=[1, 2])


@pytest.mark.parametrize(("name", "record"), sorted(_manifest_records().items()))
def test_every_manifest_entry_rebuilds_identically(name, record):
    """The builder covers every shape of record in use: each entry, rebuilt from its own fields, is equal."""
    rebuilt = make_record(**record)
    assert rebuilt == record
    assert json.dumps(rebuilt, sort_keys=True) == json.dumps(record, sort_keys=True)
    assert list(rebuilt) == [k for k in ORDER if k in record]
    # and from the validated entry's read-only fields
    assert make_record(**WeightsEntry.from_dict(name, record).to_dict()) == record


def test_the_rebuilt_manifest_serialises_byte_identically():
    records = _manifest_records()
    original = parse_manifest({"schema_version": 1, "weights": records})
    rebuilt = {name: WeightsEntry.from_dict(name, make_record(**rec)) for name, rec in records.items()}
    assert dumps_manifest(rebuilt) == dumps_manifest(original)
