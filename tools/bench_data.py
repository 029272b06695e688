"""Benchmark the CIFAR-10 train pipeline of zoo.data against a naive NumPy feed.

Both sides produce the same thing: shuffled batches of uint8 CIFAR-10 train
images, randomly cropped (4-pixel zero padding) and flipped, with int64 labels.

* zoo.data: ``load("cifar10", "train", batch_size=128, shuffle=True, augment="cifar")``:
  parallel JPEG decode, stateless augmentation, parallel batching, prefetch.
* naive: decode the needed JPEGs one by one with PIL into a NumPy array, then a
  Python generator that augments each image with NumPy and yields batches through
  ``tf.data.Dataset.from_generator`` (no parallelism), like a hand-written
  ``model.fit`` feed. Its decode time counts, since zoo.data decodes on the fly.

Usage::

    ZOO_DATA_DIR=../shared/data python tools/bench_data.py [--batches 300] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

WARMUP = 5


def _timed(it, batches: int, batch_size: int) -> tuple[float, float]:
    """Return (images/s wall, CPU microseconds per image) over ``batches`` batches."""
    for _ in range(WARMUP):
        next(it)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    images = batches * batch_size
    return images / (time.perf_counter() - wall), (time.process_time() - cpu) / images * 1e6


def bench_zoo(batches: int, batch_size: int, data_dir: str | None, cache: bool) -> tuple[float, float]:
    import zoo.data as zd

    ds = zd.load(
        "cifar10",
        "train",
        batch_size=batch_size,
        shuffle=True,
        augment="cifar",
        seed=0,
        data_dir=data_dir,
        cache=cache,
    ).repeat()
    it = iter(ds)
    if cache:  # time a later epoch: the first one fills the cache
        for _ in range(50_000 // batch_size + 1):
            next(it)
    return _timed(it, batches, batch_size)


def bench_naive(batches: int, batch_size: int, data_dir: str | None) -> tuple[float, float, float]:
    """Return (images/s with decode, images/s feed only, CPU us/image with decode)."""
    import tensorflow as tf
    from PIL import Image

    from zoo.data import catalog, resolve_data_dir

    root = resolve_data_dir(data_dir)
    if root is None:
        raise SystemExit("set ZOO_DATA_DIR or pass --data-dir")
    pixels, labels = catalog.cifar10_arrays(root, "train")
    n = min(len(labels), (batches + WARMUP) * batch_size)
    rng = np.random.default_rng(0)
    chosen = rng.permutation(len(labels))[:n]  # the rows are sorted by class

    wall, cpu = time.perf_counter(), time.process_time()
    x = np.stack([np.asarray(Image.fromarray(pixels[i]).convert("RGB")) for i in chosen])
    y = labels[chosen]
    decode_wall = (time.perf_counter() - wall) / n
    decode_cpu = (time.process_time() - cpu) / n

    def generate():
        order = rng.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = order[i : i + batch_size]
            padded = np.pad(x[idx], ((0, 0), (4, 4), (4, 4), (0, 0)))
            out = np.empty((len(idx), 32, 32, 3), np.uint8)
            for j in range(len(idx)):
                dy, dx = rng.integers(0, 9, size=2)
                image = padded[j, dy : dy + 32, dx : dx + 32]
                out[j] = image[:, ::-1] if rng.random() < 0.5 else image
            yield out, y[idx]

    ds = tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            tf.TensorSpec((batch_size, 32, 32, 3), tf.uint8),
            tf.TensorSpec((batch_size,), tf.int64),
        ),
    )
    feed_ips, feed_cpu = _timed(iter(ds), batches, batch_size)
    total_ips = 1 / (decode_wall + 1 / feed_ips)
    return total_ips, feed_ips, decode_cpu * 1e6 + feed_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; best is kept")
    parser.add_argument("--data-dir", default=None, help="overrides $ZOO_DATA_DIR")
    args = parser.parse_args()

    print(
        f"CIFAR-10 train, batch {args.batch_size}, {args.batches} timed batches, "
        f"best of {args.repeats} alternating rounds, {os.cpu_count()} CPUs visible, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, list[tuple[float, ...]]] = {"zoo": [], "cached": [], "naive": []}
    for _ in range(args.repeats):
        results["zoo"].append(bench_zoo(args.batches, args.batch_size, args.data_dir, False))
        results["cached"].append(bench_zoo(args.batches, args.batch_size, args.data_dir, True))
        results["naive"].append(bench_naive(args.batches, args.batch_size, args.data_dir))
    zoo_ips, zoo_cpu = max(results["zoo"])
    cached_ips, cached_cpu = max(results["cached"])
    naive_ips, feed_ips, naive_cpu = max(results["naive"])
    rows = [
        ("zoo.data: decode + augment + batch", zoo_ips, zoo_cpu),
        ("zoo.data, cache=True (later epoch)", cached_ips, cached_cpu),
        ("naive: PIL decode + NumPy augment feed", naive_ips, naive_cpu),
    ]
    for label, ips, cpu in rows:
        print(f"{label:42s} {ips:9.0f} images/s  {cpu:6.1f} CPU-us/image")
    print(f"{'  naive feed alone (decode excluded)':42s} {feed_ips:9.0f} images/s")
    print(
        f"speed-up of zoo.data over naive: {zoo_ips / naive_ips:.2f}x (cached: {cached_ips / naive_ips:.2f}x)"
    )
    print(
        "all rounds (images/s): "
        + ", ".join(f"{k}=[{', '.join(f'{r[0]:.0f}' for r in v)}]" for k, v in results.items())
    )


if __name__ == "__main__":
    main()
