"""The manifest schema is strict, and the shipped manifest matches its files."""

from __future__ import annotations

import copy
import json

import pytest

import zoo
from tests._records import lenet_record
from zoo.errors import ManifestError
from zoo.fileio import sha256_file
from zoo.weights.manifest import (
    PACKAGE_DIR,
    dumps_manifest,
    load_manifest,
    parse_manifest,
    repo_manifest_path,
)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "lenet5.test.weights.h5"
    path.write_bytes(b"not really weights, only hashed here")
    return path


def doc(record, name="lenet5.test"):
    return {"schema_version": 1, "weights": {name: record}}


def test_valid_record_round_trips(weights_file):
    record = lenet_record(weights_file)
    entries = parse_manifest(doc(record))
    assert entries["lenet5.test"].to_dict() == json.loads(json.dumps(record))


def test_a_metric_may_record_how_many_examples_it_was_measured_on(weights_file):
    record = lenet_record(weights_file)
    measured = {"name": "top1_accuracy", "value": 99.0, "split": "test", "dataset": "mnist"}
    record["metrics"] = [{**measured, "command": "zoo evaluate lenet5", "higher_is_better": True}]
    record["metrics"][0]["num_examples"] = 10000
    entry = parse_manifest(doc(record))["lenet5.test"]
    assert entry.metrics[0].num_examples == 10000 and entry.to_dict() == json.loads(json.dumps(record))
    for bad in (0, -3, 2.5, "10000", True):
        record["metrics"][0]["num_examples"] = bad
        with pytest.raises(ManifestError, match="num_examples must be a positive integer"):
            parse_manifest(doc(record))


@pytest.mark.parametrize("key", ["files", "license", "metrics", "preprocessing", "num_params"])
def test_missing_key_is_rejected(weights_file, key):
    record = lenet_record(weights_file)
    del record[key]
    with pytest.raises(ManifestError, match="missing keys"):
        parse_manifest(doc(record))


def test_unknown_keys_are_rejected_at_every_level(weights_file):
    record = lenet_record(weights_file)
    for place in (record, record["files"][0], record["sources"][0], record["dataset"]):
        bad = copy.deepcopy(record)
        target = {
            id(record): bad,
            id(record["files"][0]): bad["files"][0],
            id(record["sources"][0]): bad["sources"][0],
            id(record["dataset"]): bad["dataset"],
        }
        target[id(place)]["surprise"] = 1
        with pytest.raises(ManifestError, match="unknown keys"):
            parse_manifest(doc(bad))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["files"][0].update(sha256="abc"), "sha256"),
        (lambda r: r["files"][0].update(size=0), "size"),
        (lambda r: r.update(sources=[{"type": "hf", "repo_id": "a/b", "revision": "main"}]), "40-hex"),
        (lambda r: r.update(sources=[{"type": "ftp", "path": "x"}]), "source type"),
        (lambda r: r.update(labels=["a"]), "labels"),
        (lambda r: r.update(tag="other"), "arch"),
        (
            lambda r: r.update(
                sources=[{"type": "hf", "repo_id": "a/b", "revision": "0" * 40}],
                golden={"filename": "g.npz", "sha256": "0" * 64, "size": 1, "atol": 1e-5},
            ),
            "golden pair ships in the package",
        ),
        (  # a malformed source is reported as such, even beside a golden pair
            lambda r: r.update(
                sources=["pretrained/lenet5.test"],
                golden={"filename": "g.npz", "sha256": "0" * 64, "size": 1, "atol": 1e-5},
            ),
            "source type",
        ),
    ],
)
def test_bad_values_are_rejected(weights_file, mutate, message):
    record = lenet_record(weights_file)
    mutate(record)
    with pytest.raises(ManifestError, match=message):
        parse_manifest(doc(record))


def test_two_defaults_for_one_architecture_are_rejected(weights_file):
    data = {
        "schema_version": 1,
        "weights": {
            "lenet5.a": lenet_record(weights_file, tag="a"),
            "lenet5.b": lenet_record(weights_file, tag="b"),
        },
    }
    with pytest.raises(ManifestError, match="two default"):
        parse_manifest(data)


def test_entries_are_read_only(weights_file):
    entry = parse_manifest(doc(lenet_record(weights_file)))["lenet5.test"]
    with pytest.raises(AttributeError):
        entry.tag = "x"
    with pytest.raises(TypeError):
        entry.preprocessing["scale"] = 2


def test_shipped_manifest_is_canonical_and_packaged():
    top = repo_manifest_path()
    assert (PACKAGE_DIR / "weights_manifest.json").read_text() == top.read_text()
    entries = load_manifest()
    assert top.read_text() == dumps_manifest(entries), "manifest must be written by the tools"


def test_shipped_entries_match_their_files_and_registry():
    for entry in load_manifest().values():
        spec = zoo.info(entry.architecture)
        assert spec.architecture == entry.architecture
        for source in entry.sources:
            if source.type != "package":
                continue
            for f in entry.files:
                path = PACKAGE_DIR / source.path / f.filename
                assert path.stat().st_size == f.size, path
                assert sha256_file(path) == f.sha256, path
        for metric in entry.metrics:
            assert metric.command.strip(), f"{entry.name}: metric without a command"
