"""Linear probe: logistic regression on frozen EfficientNet-Lite0 ImageNet features, on CIFAR-10.

Usage:
    ZOO_DATA_DIR=../shared/data python tools/linear_probe.py                       # 10k train, 10k test
    ZOO_DATA_DIR=../shared/data python tools/linear_probe.py --train-per-class 5000 --record

The showcase of transfer learning: the backbone is never trained. Each 32x32
CIFAR-10 image is upsampled to ``--size`` (224 by default, bicubic) and normalised
as the weights expect, ``(x - 127) / 128``, then passed through
``zoo.load("efficientnet_lite0")`` up to its ``pre_logits`` layer (1280 globally
pooled features); ``zoo.train.engine.extract_features`` caches the features (a rerun
costs only the decoding).
A multinomial logistic regression (scikit-learn, L2, C picked on a held-out
fifth of the training subset) is fitted on ``--train-per-class`` images of each
class of the training split and scored on the whole test split.

CIFAR-10 is zoo.data's lossless copy: the original pixels, official test order.
``--record`` adds the test accuracy to the manifest record of
``efficientnet_lite0.in1k`` as a measured metric, with the exact command.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "efficientnet_lite0.in1k"
C_GRID = (0.001, 0.003, 0.01, 0.03)


def cifar_subset(data_dir: Path, split: str, per_class: int | None, seed: int):
    """Decoded uint8 images and labels of a split; ``per_class`` images of each class, seeded."""
    import numpy as np

    from zoo.data.catalog import cifar10_arrays

    images, labels = cifar10_arrays(data_dir, split)
    index = np.arange(len(labels))
    if per_class is not None:
        rng = np.random.default_rng(seed)
        index = np.sort(
            np.concatenate(
                [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
            )
        )
    return images[index], labels[index]


def probe_model(size: int):
    """32x32 pixels in, the frozen backbone's 1280 ``pre_logits`` features out.

    Resizing (bicubic) and the weights' normalisation, (x - 127) / 128, run inside
    the model, so the feature cache hashes the small CIFAR images rather than
    gigabytes of upsampled ones.
    """
    import keras
    import numpy as np

    import zoo
    from zoo.train.engine import feature_extractor

    entry = zoo.weights_entry(WEIGHTS)
    spec = dict(entry.preprocessing)
    expected = {"scale": 1 / 255, "mean": [127 / 255] * 3, "std": [128 / 255] * 3}
    if any(list(np.atleast_1d(spec[k])) != list(np.atleast_1d(v)) for k, v in expected.items()):
        raise SystemExit(f"{WEIGHTS} no longer normalises as (x - 127) / 128: update probe_model")
    backbone = feature_extractor(zoo.load(WEIGHTS, input_shape=(size, size, 3)), "pre_logits")
    inputs = keras.Input((32, 32, 3), name="cifar_image")
    x = keras.layers.Resizing(size, size, interpolation="bicubic", name="resize")(inputs)
    x = keras.layers.Rescaling(1 / 128, offset=-127 / 128, name="normalise")(x)
    features = keras.layers.Identity(name="pre_logits")(backbone(x))
    return keras.Model(inputs, features, name=f"efficientnet_lite0_probe{size}")


def features(model, images, labels, batch_size: int):
    import tensorflow as tf

    from zoo.train.engine import extract_features

    ds = tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels)).batch(batch_size)
    return extract_features(model, ds, layers="pre_logits")


def fit_probe(x_train, y_train, seed: int):
    """Standardise, pick C on a held-out fifth, refit on everything; return the fitted pipeline."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def make(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    rng = np.random.default_rng(seed)
    held = rng.random(len(y_train)) < 0.2
    scores = {}
    for c in C_GRID:
        scores[c] = make(c).fit(x_train[~held], y_train[~held]).score(x_train[held], y_train[held])
        print(f"  C={c:<5g} held-out accuracy {scores[c]:.4f}")
    best = max(scores, key=scores.get)
    return make(best).fit(x_train, y_train), best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train-per-class",
        type=int,
        default=1000,
        help="training images per class (5000 = the whole training split)",
    )
    parser.add_argument("--size", type=int, default=224, help="side the 32x32 images are resized to")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="data directory (default: ZOO_DATA_DIR)")
    parser.add_argument(
        "--record", action="store_true", help=f"add the test accuracy to the manifest record of {WEIGHTS}"
    )
    args = parser.parse_args()

    import numpy as np

    from zoo.data import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None or not (data_dir / "cifar10").is_dir():
        raise SystemExit("CIFAR-10 not found: set ZOO_DATA_DIR (or --data-dir) to the shared data folder")
    model = probe_model(args.size)
    per_class = None if args.train_per_class >= 5000 else args.train_per_class

    start = time.time()
    x_img, y_train = cifar_subset(data_dir, "train", per_class, args.seed)
    x_train, y_train = features(model, x_img, y_train, args.batch_size)
    print(f"train features {x_train.shape} in {time.time() - start:.0f} s")
    start = time.time()
    t_img, y_test = cifar_subset(data_dir, "test", None, args.seed)
    x_test, y_test = features(model, t_img, y_test, args.batch_size)
    print(f"test features {x_test.shape} in {time.time() - start:.0f} s")

    probe, c = fit_probe(x_train, y_train, args.seed)
    accuracy = 100.0 * float(np.mean(probe.predict(x_test) == y_test))
    argv = [a for a in sys.argv[1:] if a != "--record"]
    command = shlex.join(["python", "tools/linear_probe.py", *argv])
    print(
        f"linear probe on {WEIGHTS} pre_logits features ({args.size}x{args.size}), "
        f"{len(y_train)} train images, C={c:g}: CIFAR-10 test top-1 accuracy {accuracy:.2f}% "
        f"on {len(y_test)} images"
    )
    print(f"command: {command}")
    if args.record:
        from zoo.weights.manifest import load_manifest, repo_manifest_path, upsert_entries

        record = load_manifest(repo_manifest_path())[WEIGHTS].to_dict()
        metric = {
            "name": "linear_probe_top1_accuracy",
            "value": round(accuracy, 2),
            "split": "test",
            "command": command,
            "dataset": "cifar10",
            "higher_is_better": True,
        }
        record["metrics"] = [m for m in record["metrics"] if m["name"] != metric["name"]] + [metric]
        upsert_entries({WEIGHTS: record})
        print(f"recorded {metric['name']} in {WEIGHTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
