"""Batch-norm folding in the inference path: same outputs as the model, live weights, the right pairs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo
from zoo.tasks.fold import fold_batch_norms, folding_break_even
from zoo.tasks.inference import predict_fn


def _randomise_batch_norms(model, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics, so that a wrong fold shows."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, n),
                    rng.normal(0, 0.2, n),
                    rng.normal(0, 0.2, n),
                    rng.uniform(0.5, 2.0, n),
                ]
            )


def _folded_layers(model) -> int:
    return sum(type(layer).__name__ == "_FoldedConv" for layer in model._flatten_layers())


def _close(got, want) -> None:
    got, want = keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize(("arch", "shape"), [("resnet20", (32, 32, 3)), ("vgg11_cifar", (32, 32, 3))])
def test_folded_model_computes_what_the_model_does(arch, shape):
    model = zoo.build(arch, num_classes=10, input_shape=shape)
    _randomise_batch_norms(model)
    folded = fold_batch_norms(model)
    after_convs = sum(
        isinstance(layer, keras.layers.BatchNormalization)
        and isinstance(layer.input._keras_history.operation, keras.layers.Conv2D)
        for layer in model.layers
    )
    assert _folded_layers(folded) == after_convs > 0  # every conv + batch norm pair (not Dense + BN)
    x = np.random.default_rng(1).random((3, *shape), dtype=np.float32)
    _close(folded(x, training=False), model(x, training=False))
    assert {id(v) for v in folded.weights} == {id(v) for v in model.weights}  # shared, not copied


def test_depthwise_convolutions_and_nested_backbones_fold():
    """A fine-tuned folder's model: EfficientNet-Lite0 (depthwise convolutions) nested in a new head."""
    backbone = zoo.build("efficientnet_lite0", include_top=False, input_shape=(64, 64, 3))
    _randomise_batch_norms(backbone)
    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(backbone(inputs)))
    model = keras.Model(inputs, outputs)
    folded = fold_batch_norms(model)
    depthwise = [
        layer.conv
        for layer in folded._flatten_layers()
        if type(layer).__name__ == "_FoldedConv" and isinstance(layer.conv, keras.layers.DepthwiseConv2D)
    ]
    assert depthwise
    x = np.random.default_rng(2).random((2, 64, 64, 3), dtype=np.float32)
    _close(folded(x, training=False), model(x, training=False))


def test_a_model_ending_between_a_conv_and_its_batch_norm_keeps_that_pair():
    """`zoo extract --layer` at a convolution must get the convolution's output, not the normalised one."""
    model = zoo.build("resnet20", num_classes=10, input_shape=(32, 32, 3))
    _randomise_batch_norms(model)
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    sub = keras.Model(model.input, conv.output)
    assert fold_batch_norms(sub) is sub and folding_break_even(sub) is None
    x = np.random.default_rng(3).random((2, 32, 32, 3), dtype=np.float32)
    _close(predict_fn(sub)(x), sub(x, training=False))


def test_predict_fn_follows_weight_changes_and_matches_the_model_at_every_batch_size():
    model = zoo.build("resnet20", num_classes=10, input_shape=(32, 32, 3))
    fn = predict_fn(model)
    break_even = folding_break_even(model)
    assert break_even is not None and break_even > 1  # batch 1 runs unfolded, larger batches folded
    rng = np.random.default_rng(4)
    for seed in (0, 1):  # new weights after the function was made: it must not keep the old ones
        _randomise_batch_norms(model, seed)
        model.layers[1].set_weights([w + rng.normal(0, 0.1, w.shape) for w in model.layers[1].get_weights()])
        for batch in (1, break_even, 64):
            x = rng.random((batch, 32, 32, 3), dtype=np.float32)
            _close(fn(x), model(x, training=False))
    assert predict_fn(model) is fn


def test_models_without_batch_norms_run_as_they_are():
    model = zoo.build("lenet5", num_classes=10)
    assert fold_batch_norms(model) is model and folding_break_even(model) is None


def test_a_folded_function_lets_its_model_go():
    import gc
    import weakref

    from zoo.tasks import inference

    model = zoo.build("resnet20", num_classes=10, input_shape=(32, 32, 3))
    fn = predict_fn(model)
    fn(np.zeros((64, 32, 32, 3), np.float32))
    gone, key = weakref.ref(model), (id(model), False, True)
    assert key in inference._COMPILED
    del model, fn
    gc.collect()
    assert gone() is None, "the folded copy must not keep its model alive"
    assert key not in inference._COMPILED
