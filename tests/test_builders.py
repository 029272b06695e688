"""Every registered builder: shapes, exact parameter counts, heads, serialisation.

The heavy ImageNet networks (AlexNet, VGG, ResNet-50/101/152) are marked ``slow``;
the rest of the file runs in about a minute on two CPU cores.
"""

from __future__ import annotations

import gc
import inspect
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zoo.registry import TASKS, registry

keras = pytest.importorskip("keras")

# Keras' TensorFlow backend calls np.array(tensor, copy=False) internally under NumPy 2.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# Trainable parameter counts with the default arguments. Trainable weights are what
# torch's ``sum(p.numel() for p in model.parameters())`` counts; Keras'
# ``count_params()`` also counts the (non-trainable) batch norm moving statistics.
EXPECTED_PARAMS = {
    # EfficientNet-Lite0: 4,652,008 trainable (count_params() 4,694,024 with BN moving stats).
    "efficientnet_lite0": 4_652_008,
    # LeNet-5 as documented in zoo/models/lenet.py.
    "lenet5": 61_706,
    # torchvision's published counts (torchvision.models docs, 1000 classes).
    "alexnet_imagenet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    # CIFAR ResNets (He et al. 2015, table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M). By hand:
    # stem 3*3*3*16 + BN 2*16 = 464; a 16-channel block 2*(9*16*16) + 2*2*16 = 4,672;
    # the first 32-channel block 9*16*32 + 9*32*32 + 4*32 = 13,952, the others 18,560;
    # the first 64-channel block 9*32*64 + 9*64*64 + 4*64 = 55,552, the others 73,984;
    # head 64*10 + 10 = 650. n = 3 gives 269,722 and every extra n adds 97,216.
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    # alexnet_cifar: bias-free convs 5*5*3*64 + 5*5*64*128 + 3*3*128*256 + 3*3*256*256
    # + 3*3*256*128 = 1,389,248; BN 2*(64+128+256+256+128) = 1,664; fc6 2048*1024 and
    # fc7 1024*512 without bias = 2,621,440; BN 2*(1024+512) = 3,072; head 512*10+10.
    "alexnet_cifar": 4_020_554,
    # VGG CIFAR: torchvision's conv stacks with bias (vgg11: 9,220,480; vgg16:
    # 14,714,688) + their BN (2*2,752 and 2*4,224) + classifier_fc 512*512 + BN 1,024
    # + head 5,130.
    "vgg11_cifar": 9_494_282,
    "vgg16_cifar": 14_991_434,
    # lstm_charlm: embedding 65*64 = 4,160; LSTM 4*(256*(64+256)+256) = 328,704 and
    # 4*(256*(256+256)+256) = 525,312; lm_head 256*65+65 = 16,705.
    "lstm_charlm": 874_881,
    # lstm_classifier: embedding 20000*128; BiLSTM 2*4*(64*(128+64)+64) = 98,816; head
    # 128*2+2.
    "lstm_classifier": 2_659_074,
    # BERT with pooler: embeddings V*H + 512*H + 2*H + 2*H, per layer
    # 4*(H*H+H) + I*H+I + I*H+H + 4*H, pooler H*H+H (V = 30522).
    "bert_tiny": 4_385_920,  # L2 H128 I512
    "bert_mini": 11_170_560,  # L4 H256 I1024 (Google's BERT-Mini count)
    "bert_small": 28_763_648,  # L4 H512 I2048
    "bert_medium": 41_373_184,  # L8 H512 I2048
    "minilm_l6": 22_713_216,  # L6 H384 I1536 (all-MiniLM-L6-v2's BertModel)
    # DCGAN (28x28x1, latent 100): generator 100*12544 + BN 512 + 5*5*256*128 + BN 256
    # + 5*5*128*64 + BN 128 + 5*5*64+1 = 2,280,897; discriminator 5*5*64+64 +
    # 5*5*64*128 + BN 256 + 5*5*128*256 + BN 512 + 12544+1 = 1,038,977.
    "dcgan": 3_319_874,
    # VAE (28x28x1, latent 32, residual blocks of two 3x3 convs): encoder conv1 5*5*32+32 +
    # res1 2*(9*32*32+32) + conv2 9*32*64+64 + res2 2*(9*64*64+64) + reduce 64*16+16 +
    # dense 784*512+512 + 2*(512*32+32) = 547,472; decoder dense 32*512+512 + project
    # 512*784+784 + expand 9*16*64+64 + res1 73,856 + deconv1 16*64*32+32 + res2 18,496 +
    # deconv2 16*32*32+32 + logits 9*32+1 = 570,225.
    "vae": 1_117_697,
}

# ImageNet-size networks: building, saving and running them takes seconds and GBs.
SLOW = {
    "alexnet_imagenet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "resnet50",
    "resnet101",
    "resnet152",
    "bert_medium",
}

NAMES = sorted(registry())


def _param(name: str):
    return pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name


def _np(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _trainable(model) -> int:
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


@pytest.fixture(autouse=True)
def _free_memory():
    yield
    keras.backend.clear_session()
    gc.collect()


def _bert_inputs(batch: int = 2, seq: int = 12, vocab: int = 30522, seed: int = 0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), dtype="int32")
    mask[-1, seq - 3 :] = 0
    return {
        "input_ids": rng.integers(0, vocab, (batch, seq)).astype("int32"),
        "token_type_ids": (np.arange(seq)[None, :] >= seq // 2).astype("int32").repeat(batch, 0),
        "attention_mask": mask,
    }


def _sample_inputs(spec, model, batch: int):
    """Return a batch of valid inputs for ``model`` and a function computing outputs."""
    rng = np.random.default_rng(0)
    if spec.family == "dcgan":
        z = rng.standard_normal((batch, model.latent_dim)).astype("float32")
        return z, lambda m: [
            m.generator(z, training=False),
            m.discriminator(m.generator(z, training=False), training=False),
        ]
    if spec.family == "vae":
        x = (rng.random((batch, 28, 28, 1)) > 0.5).astype("float32")
        return x, lambda m: list(m.encoder(x, training=False)) + [m(x, training=False)]
    if spec.family == "bert":
        x = _bert_inputs(batch)
        return x, lambda m: m(x, training=False)
    if spec.task in ("language-modeling", "text-classification"):
        x = rng.integers(1, 60, (batch, 20)).astype("int32")
        return x, lambda m: m(x, training=False)
    shape = model.input_shape[1:]
    x = rng.random((batch, *shape)).astype("float32")
    return x, lambda m: m(x, training=False)


def _as_arrays(outputs) -> list[np.ndarray]:
    if isinstance(outputs, dict):
        return [_np(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [_np(o) for o in outputs]
    return [_np(outputs)]


# --- registry metadata -----------------------------------------------------------------------


def test_every_variant_has_an_expected_count():
    assert set(NAMES) == set(EXPECTED_PARAMS)


def test_registry_metadata():
    specs = registry()
    families = {s.family for s in specs.values()}
    for family in families:
        defaults = [s.name for s in specs.values() if s.family == family and s.family_default]
        assert len(defaults) == 1, (family, defaults)
    for spec in specs.values():
        assert spec.task in TASKS
        assert spec.builder.__name__ == spec.name
        assert spec.paper and spec.display_name and spec.description
        assert spec.paper_url.startswith("https://")
        doc = inspect.getdoc(spec.builder)
        assert doc and "Args:" in doc and "Returns:" in doc, spec.name
        params = inspect.signature(spec.builder).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), spec.name


def test_expected_family_defaults():
    defaults = {s.family: s.name for s in registry().values() if s.family_default}
    assert defaults == {
        "alexnet": "alexnet_cifar",
        "bert": "bert_mini",
        "dcgan": "dcgan",
        "efficientnet": "efficientnet_lite0",
        "lenet": "lenet5",
        "lstm": "lstm_charlm",
        "resnet": "resnet20",
        "vae": "vae",
        "vgg": "vgg11_cifar",
    }


def test_registry_does_not_import_keras():
    code = textwrap.dedent(
        """
        import sys
        import zoo.registry as r
        r.registry()
        bad = [m for m in ("keras", "tensorflow") if m in sys.modules]
        assert not bad, bad
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cifar_resnet_counts_round_to_the_paper():
    paper = {"resnet20": 0.27, "resnet32": 0.46, "resnet44": 0.66, "resnet56": 0.85, "resnet110": 1.7}
    for name, millions in paper.items():
        digits = 1 if millions >= 1 else 2
        assert round(EXPECTED_PARAMS[name] / 1e6, digits) == millions, name


# --- every variant ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_variant(name, tmp_path):
    """Build, count, run, and round-trip the weights of one registered variant."""
    spec = registry()[name]
    keras.utils.set_random_seed(1)
    model = spec.builder()
    assert model.name == name
    assert _trainable(model) == EXPECTED_PARAMS[name]

    batch = 1 if name in SLOW else 2
    inputs, run = _sample_inputs(spec, model, batch)
    outputs = _as_arrays(run(model))
    for out in outputs:
        assert out.shape[0] == batch and np.isfinite(out).all()

    if spec.task == "image-classification":
        assert outputs[0].shape == (batch, model.get_layer("head").units)
        pre_logits = model.get_layer("pre_logits")
        assert model.get_layer("head").input is pre_logits.output
        assert isinstance(pre_logits, keras.layers.Identity)
    elif spec.task == "text-classification":
        assert outputs[0].shape == (batch, 2)
        model.get_layer("pre_logits")
    elif spec.task == "language-modeling":
        assert outputs[0].shape == (batch, 20, 65)
    elif spec.family == "bert":
        hidden = model.get_layer("pooler_dense").units
        pooled, sequence = outputs  # sorted keys: pooled_output, sequence_output
        assert pooled.shape == (batch, hidden) and sequence.shape == (batch, 12, hidden)
    elif spec.family == "dcgan":
        assert outputs[0].shape == (batch, 28, 28, 1) and outputs[1].shape == (batch, 1)
        assert np.abs(outputs[0]).max() <= 1.0
    elif spec.family == "vae":
        mean, log_var, logits = outputs
        assert mean.shape == log_var.shape == (batch, 32) and logits.shape == (batch, 28, 28, 1)

    path = tmp_path / f"{name}.weights.h5"
    model.save_weights(path)
    del model
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(2)  # a different initialisation, overwritten by the load
    fresh = spec.builder()
    fresh.load_weights(path)
    path.unlink()  # the ImageNet files are hundreds of MB
    for before, after in zip(outputs, _as_arrays(run(fresh)), strict=True):
        np.testing.assert_array_equal(before, after)


CLASSIFIERS = [n for n in NAMES if registry()[n].task == "image-classification"]
# One representative per builder function runs by default; the rest are slow.
QUICK_CLASSIFIERS = {"lenet5", "alexnet_cifar", "vgg11_cifar", "resnet20", "resnet18"}


@pytest.mark.parametrize(
    "name",
    [n if n in QUICK_CLASSIFIERS else pytest.param(n, marks=pytest.mark.slow) for n in CLASSIFIERS],
)
def test_classifier_options(name):
    """``include_top=False`` gives the trunk's feature map, ``pooling`` a vector."""
    spec = registry()[name]
    small = {"alexnet_imagenet": (127, 127, 3)}.get(name)  # smaller inputs keep the slow tests quicker
    trunk = spec.builder(include_top=False, input_shape=small)
    assert len(trunk.output_shape) == 4
    channels = trunk.output_shape[-1]
    assert not any(layer.name in ("head", "pre_logits") for layer in trunk.layers)
    for pooling in ("avg", "max"):
        pooled = spec.builder(include_top=False, pooling=pooling, input_shape=small)
        assert pooled.output_shape == (None, channels)
        assert _trainable(pooled) == _trainable(trunk)
    with pytest.raises(ValueError):
        spec.builder(include_top=False, pooling="mean")
    if name not in SLOW:
        probs = spec.builder(num_classes=7, classifier_activation="softmax")
        x = np.random.default_rng(0).random((2, *probs.input_shape[1:])).astype("float32")
        y = _np(probs(x, training=False))
        assert y.shape == (2, 7)
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)


def test_cifar_trunk_shapes():
    expected = {
        "alexnet_cifar": (None, 4, 4, 128),
        "vgg11_cifar": (None, 1, 1, 512),
        "resnet20": (None, 8, 8, 64),
    }
    for name, shape in expected.items():
        assert registry()[name].builder(include_top=False).output_shape == shape


@pytest.mark.slow
def test_imagenet_trunk_shapes():
    expected = {
        "alexnet_imagenet": (None, 6, 6, 256),
        "vgg16": (None, 7, 7, 512),
        "resnet18": (None, 7, 7, 512),
        "resnet50": (None, 7, 7, 2048),
    }
    for name, shape in expected.items():
        assert registry()[name].builder(include_top=False).output_shape == shape
        keras.backend.clear_session()


@pytest.mark.slow
def test_imagenet_heads_accept_other_input_sizes():
    """Adaptive average pooling lets AlexNet and VGG classify non-224 images, like torchvision."""
    for name, size in (("alexnet_imagenet", 96), ("vgg11", 64)):
        model = registry()[name].builder(input_shape=(size, size, 3), num_classes=5)
        assert _trainable(model) == EXPECTED_PARAMS[name] - 995 * 4097
        x = np.zeros((1, size, size, 3), dtype="float32")
        assert _np(model(x, training=False)).shape == (1, 5)
        keras.backend.clear_session()


@pytest.mark.parametrize("size,out", [(7, 7), (14, 7), (6, 6), (10, 7), (13, 6), (5, 7)])
def test_torch_adaptive_avg_pool2d_matches_pytorch_bins(size, out):
    """PyTorch's bins on every backend (Keras 3.15's layer gives NaN on JAX for 7->7 and 14->7)."""
    from zoo.models._common import torch_adaptive_avg_pool2d

    inputs = keras.Input((size, size, 3))
    model = keras.Model(inputs, torch_adaptive_avg_pool2d(inputs, (out, out)))
    x = np.random.default_rng(size).uniform(0, 1, (2, size, size, 3)).astype("float32")
    expected = np.zeros((2, out, out, 3))
    for i in range(out):
        for j in range(out):
            rows = slice(i * size // out, -(-(i + 1) * size // out))
            cols = slice(j * size // out, -(-(j + 1) * size // out))
            expected[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    np.testing.assert_allclose(_np(model(x)), expected, rtol=1e-5, atol=1e-6)


# --- torchvision layouts ----------------------------------------------------------------------


def _torch_conv(x, kernel, stride, pad):
    """NumPy ``torch.nn.functional.conv2d`` for NHWC ``x`` and HWIO ``kernel``."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    k = kernel.shape[0]
    out = (x.shape[1] - k) // stride + 1
    y = np.zeros((x.shape[0], out, out, kernel.shape[-1]), dtype="float64")
    for i in range(out):
        for j in range(out):
            patch = x[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            y[:, i, j] = np.einsum("nhwc,hwco->no", patch, kernel)
    return y


@pytest.mark.parametrize(
    "kernel,stride,pad,size", [(3, 2, 1, 8), (7, 2, 3, 12), (3, 1, 1, 6), (11, 4, 2, 23), (5, 1, 2, 7)]
)
def test_torch_conv2d_matches_pytorch_padding(kernel, stride, pad, size):
    from zoo.models._common import torch_conv2d

    inputs = keras.Input((size, size, 2))
    model = keras.Model(
        inputs, torch_conv2d(inputs, 3, kernel, strides=stride, padding=pad, use_bias=False, name="conv")
    )
    x = np.random.default_rng(0).standard_normal((1, size, size, 2)).astype("float32")
    expected = _torch_conv(x, model.get_layer("conv").kernel.numpy(), stride, pad)
    np.testing.assert_allclose(_np(model(x)), expected, rtol=1e-4, atol=1e-4)


def test_torchvision_style_layer_names():
    resnet = registry()["resnet18"].builder()
    names = {layer.name for layer in resnet.layers}
    for expected in (
        "conv1",
        "bn1",
        "layer1_0_conv1",
        "layer1_0_bn2",
        "layer2_0_downsample_0",
        "layer2_0_downsample_1",
        "layer4_1_conv2",
        "pre_logits",
        "head",
    ):
        assert expected in names
    assert "layer1_0_downsample_0" not in names
    bn = resnet.get_layer("bn1")
    assert bn.epsilon == 1e-5 and bn.momentum == pytest.approx(0.9)
    keras.backend.clear_session()
    vgg = registry()["vgg11_cifar"].builder()
    assert [vgg.get_layer(f"features_{i}").__class__.__name__ for i in range(4)] == [
        "Conv2D",
        "BatchNormalization",
        "ReLU",
        "MaxPooling2D",
    ]


def test_option_a_shortcuts_are_parameter_free():
    model = registry()["resnet20"].builder()
    pad = model.get_layer("layer2_0_shortcut_pad")
    assert not pad.weights and pad.output.shape[-1] == 32
    assert "layer2_0_downsample_0" not in {layer.name for layer in model.layers}
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    x = np.arange(2 * 32 * 32 * 16, dtype="float32").reshape(2, 32, 32, 16)
    sub = keras.Model(model.get_layer("layer2_0_shortcut_pool").input, pad.output)
    y = _np(sub(x))
    assert y.shape == (2, 16, 16, 32)
    np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2, :])
    assert not y[..., :8].any() and not y[..., 24:].any()


# --- BERT -------------------------------------------------------------------------------------


def _layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _numpy_bert(model, inputs, num_layers, num_heads):
    """A from-scratch NumPy BertModel forward pass using the Keras model's weights."""
    w = {layer.name: [v.numpy().astype("float64") for v in layer.weights] for layer in model.layers}
    erf = np.vectorize(math.erf)
    ids, types, mask = (inputs[k] for k in ("input_ids", "token_type_ids", "attention_mask"))
    seq = ids.shape[1]
    x = (
        w["embeddings_word_embeddings"][0][ids]
        + w["embeddings_position_embeddings"][0][:seq]
        + w["embeddings_token_type_embeddings"][0][types]
    )
    x = _layer_norm(x, *w["embeddings_LayerNorm"])
    bias = (1.0 - mask[:, None, None, :]) * -10000.0
    for i in range(num_layers):
        p = f"encoder_layer_{i}_"

        def dense(h, name, p=p):
            kernel, b = w[p + name]
            return h @ kernel + b

        def heads(h):
            n, s, d = h.shape
            return h.reshape(n, s, num_heads, d // num_heads).transpose(0, 2, 1, 3)

        q, k, v = (heads(dense(x, f"attention_self_{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1]) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = _layer_norm(dense(ctx, "attention_output_dense") + x, *w[p + "attention_output_LayerNorm"])
        h = dense(x, "intermediate_dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = _layer_norm(dense(h, "output_dense") + x, *w[p + "output_LayerNorm"])
    kernel, b = w["pooler_dense"]
    return x, np.tanh(x[:, 0] @ kernel + b)


def test_bert_matches_a_numpy_reference():
    model = registry()["bert_tiny"].builder()
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(0.0, 0.1, v.shape).astype("float32") for v in model.get_weights()])
    inputs = _bert_inputs(batch=2, seq=9)
    out = model(inputs, training=False)
    sequence, pooled = _numpy_bert(model, inputs, num_layers=2, num_heads=2)
    np.testing.assert_allclose(_np(out["sequence_output"]), sequence, atol=2e-4)
    np.testing.assert_allclose(_np(out["pooled_output"]), pooled, atol=2e-4)


def test_bert_padding_does_not_change_real_tokens():
    model = registry()["bert_tiny"].builder()
    inputs = _bert_inputs(batch=1, seq=8)
    inputs["attention_mask"][:] = 1
    short = _np(model(inputs, training=False)["sequence_output"])
    padded = {k: np.concatenate([v, np.zeros((1, 4), dtype="int32")], axis=1) for k, v in inputs.items()}
    long = _np(model(padded, training=False)["sequence_output"])
    np.testing.assert_allclose(long[:, :8], short, atol=1e-5)


def test_bert_classifier_top():
    model = registry()["bert_tiny"].builder(include_top=True, num_classes=3)
    assert _trainable(model) == EXPECTED_PARAMS["bert_tiny"] + 128 * 3 + 3
    assert model.get_layer("head").input is model.get_layer("pre_logits").output
    assert _np(model(_bert_inputs(), training=False)).shape == (2, 3)


# --- LSTM, DCGAN, VAE -------------------------------------------------------------------------


def test_lstm_options():
    charlm = registry()["lstm_charlm"].builder(vocab_size=30, num_layers=3, units=32)
    x = np.random.default_rng(0).integers(0, 30, (2, 7)).astype("int32")
    assert _np(charlm(x)).shape == (2, 7, 30)
    clf = registry()["lstm_classifier"].builder(bidirectional=False, max_length=16, num_classes=4)
    assert clf.input_shape == (None, 16)
    assert _np(clf(np.ones((3, 16), dtype="int32"))).shape == (3, 4)
    trunk = registry()["lstm_classifier"].builder(include_top=False)
    assert trunk.output_shape == (None, 128)


def test_lstm_max_pooling_ignores_padding():
    """Max-over-time pooling skips padded steps: the output does not depend on batch padding."""
    clf = registry()["lstm_classifier"].builder(
        vocab_size=50, embed_dim=8, units=4, pooling="max", embedding_dropout=0.3
    )
    ids = np.array([[3, 4, 5]], dtype="int32")
    short = _np(clf(ids))
    for pad in (1, 20):
        np.testing.assert_array_equal(_np(clf(np.pad(ids, [[0, 0], [0, pad]]))), short)
    mixed = _np(clf(np.array([[3, 4, 5, 0], [7, 0, 0, 0]], dtype="int32")))
    np.testing.assert_allclose(mixed[:1], short, atol=1e-6)
    np.testing.assert_allclose(mixed[1:], _np(clf(np.array([[7]], dtype="int32"))), atol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        registry()["lstm_classifier"].builder(pooling="mean")


@pytest.mark.tensorflow_only("training the DCGAN and VAE needs TensorFlow")
def test_dcgan_trains_generates_and_interpolates():
    gan = registry()["dcgan"].builder()
    gan.compile()
    images = np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    history = gan.fit(images, batch_size=8, epochs=1, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    assert all(np.isfinite(v[0]) for v in history.history.values())
    a = gan.generate(3, seed=7)
    assert a.shape == (3, 28, 28, 1) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, gan.generate(3, seed=7))
    path = gan.interpolate(1, 2, steps=5)
    assert path.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(path[0], gan.generate(1, seed=1)[0], atol=1e-6)
    np.testing.assert_allclose(path[-1], gan.generate(1, seed=2)[0], atol=1e-6)
    assert gan.interpolate(1, 2, steps=3, spherical=True).shape == (3, 28, 28, 1)


def test_dcgan_colour_32():
    gan = registry()["dcgan"].builder(image_size=32, channels=3, latent_dim=64)
    assert gan.generator.output_shape == (None, 32, 32, 3)
    assert gan.discriminator.input_shape == (None, 32, 32, 3)
    assert gan.generate(2, seed=0).shape == (2, 32, 32, 3)
    with pytest.raises(ValueError):
        registry()["dcgan"].builder(image_size=64)


@pytest.mark.tensorflow_only("training the DCGAN and VAE needs TensorFlow")
def test_vae_trains_and_exposes_its_api():
    vae = registry()["vae"].builder()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = (np.random.default_rng(0).random((16, 28, 28, 1)) > 0.5).astype("float32")
    history = vae.fit(x, batch_size=8, epochs=1, verbose=0)
    assert {"loss", "reconstruction_loss", "kl_loss"} <= set(history.history)
    result = vae.evaluate(x, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(result["reconstruction_loss"] + result["kl_loss"], rel=1e-4)
    mean, log_var = vae.encode(x[:4])
    assert mean.shape == log_var.shape == (4, 32)
    probs = vae.decode(mean)
    assert probs.shape == (4, 28, 28, 1) and 0.0 <= probs.min() and probs.max() <= 1.0
    assert vae.sample(5, seed=3).shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(vae.sample(2, seed=3), vae.sample(2, seed=3))
    assert vae.interpolate(x[0], x[1], steps=4).shape == (4, 28, 28, 1)
    assert vae.interpolate(mean[0], mean[1], steps=3).shape == (3, 28, 28, 1)
    nelbo = vae.negative_elbo(x[:4], seed=0)
    assert nelbo.shape == (4,) and (nelbo > 0).all()


# --- whole-model serialisation -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "dcgan", "vae", "bert_tiny"])
def test_keras_file_round_trip(name, tmp_path):
    spec = registry()[name]
    model = spec.builder()
    config = model.get_config()
    assert config
    inputs, run = _sample_inputs(spec, model, 2)
    expected = _as_arrays(run(model))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.name == name
    for before, after in zip(expected, _as_arrays(run(loaded)), strict=True):
        np.testing.assert_array_equal(before, after)
    rebuilt = type(model).from_config(config)
    assert _trainable(rebuilt) == EXPECTED_PARAMS[name]


def test_compiled_dcgan_keras_file_keeps_its_optimizers(tmp_path):
    gan = registry()["dcgan"].builder()
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(3e-4, beta_1=0.5),
    )
    gan.save(tmp_path / "gan.keras")
    loaded = keras.saving.load_model(tmp_path / "gan.keras")
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(1e-4)
    assert float(loaded.g_optimizer.learning_rate) == pytest.approx(3e-4)


# --- optional comparisons against torchvision --------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet_imagenet", "vgg11_bn", "resnet18", "resnet50"])
def test_parameter_layout_matches_torchvision(name):
    """Every torchvision parameter maps onto a Keras weight of the same size by name."""
    try:
        import torchvision
    except Exception as exc:  # absent, or a torch/torchvision build mismatch (RuntimeError)
        pytest.skip(f"torchvision is not usable here: {exc}")
    torch_model = getattr(torchvision.models, {"alexnet_imagenet": "alexnet"}.get(name, name))()
    model = registry()[name].builder()
    suffix = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}
    for key, tensor in torch_model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        module, _, kind = key.rpartition(".")
        layer_name = module.replace(".", "_")
        if layer_name in ("fc", "classifier_6"):
            layer_name = "head"
        layer = model.get_layer(layer_name)
        weight = (
            layer.weights[suffix[kind]]
            if isinstance(layer, keras.layers.BatchNormalization)
            else layer.weights[0 if kind == "weight" else 1]
        )
        assert math.prod(weight.shape) == tensor.numel(), key
