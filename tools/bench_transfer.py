"""Benchmark: 10 epochs of head training on cached features vs recomputing them every epoch.

Both sides train the same new Dense head on a zoo backbone's ``pre_logits``
features (by default the real ImageNet EfficientNet-Lite0 on CIFAR-10, with the
weights' own preprocessing: the linear-probe setting) and report test accuracy.
The ratio compares wall-clock times measured side by side in this run.

Usage:
    ZOO_DATA_DIR=../shared/data python tools/bench_transfer.py [--model efficientnet_lite0]
        [--dataset cifar10] [--train 1000] [--test 1000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0", help="weights with a pre_logits layer")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--train", type=int, default=1000, help="training images (taken shuffled)")
    parser.add_argument("--test", type=int, default=1000, help="test images (taken shuffled)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    import zoo
    import zoo.data
    from zoo.train.engine import extract_features, split_backbone

    entry = zoo.weights_entry(args.model)
    spec = dict(entry.preprocessing)
    num_classes = len(zoo.data.info(args.dataset).label_names)

    def images(split, n):
        # a fixed shuffle (the local copies are sorted by class), then pixels cached once
        ds = zoo.data.load(args.dataset, split, shuffle=True, seed=0, preprocessing=spec, as_supervised=True)
        return ds.take(n).batch(args.batch_size).cache()

    train, test = images("train", args.train), images("test", args.test)
    for _ in train:  # decode once so both sides start from cached pixels
        pass
    for _ in test:
        pass

    def head_model(features: int) -> keras.Model:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((features,))
        model = keras.Model(inputs, keras.layers.Dense(num_classes, name="head")(inputs))
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    # Recompute: frozen backbone in the graph, features computed again every epoch.
    backbone, _ = split_backbone(zoo.load(entry.name))
    backbone.trainable = False
    keras.utils.set_random_seed(0)
    inputs = keras.Input(backbone.input_shape[1:])
    full = keras.Model(inputs, keras.layers.Dense(num_classes, name="head")(backbone(inputs, training=False)))
    full.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    full.fit(train, epochs=args.epochs, verbose=0)
    t_recompute = time.perf_counter() - start
    acc_recompute = full.evaluate(test, verbose=0)[1]

    model = zoo.load(entry.name)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        xtr, ytr = extract_features(model, train, cache_dir=cache)
        t_extract = time.perf_counter() - start
        start = time.perf_counter()
        xtr, ytr = extract_features(model, train, cache_dir=cache)
        t_hit = time.perf_counter() - start
        xte, yte = extract_features(model, test, cache_dir=cache)
    head = head_model(xtr.shape[1])
    feats = tf.data.Dataset.from_tensor_slices((xtr, ytr)).batch(args.batch_size).cache()
    start = time.perf_counter()
    head.fit(feats, epochs=args.epochs, verbose=0)
    t_head = time.perf_counter() - start
    acc_cached = head.evaluate(xte, yte, verbose=0)[1]

    cold, warm = t_extract + t_head, t_hit + t_head
    print(f"{args.epochs} epochs of head training, {len(ytr)} {args.dataset} images, {entry.name} features")
    print("| path | seconds | speed-up vs recompute | test accuracy |")
    print("|---|---|---|---|")
    print(f"| recompute features every epoch | {t_recompute:.2f} | 1.0x | {100 * acc_recompute:.2f}% |")
    print(
        f"| cached, cold (extract once + train) | {cold:.2f} | {t_recompute / cold:.1f}x "
        f"| {100 * acc_cached:.2f}% |"
    )
    print(
        f"| cached, warm (cache hit + train) | {warm:.2f} | {t_recompute / warm:.1f}x "
        f"| {100 * acc_cached:.2f}% |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
