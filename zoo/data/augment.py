"""Training-time augmentation of single uint8 images, with stateless (seeded) randomness.

Each helper takes an image ``(H, W, C)`` or a batch ``(N, H, W, C)`` (every
image of a batch gets its own random draw) and a ``seed``: an int tensor of
shape ``(2,)`` as the ``tf.random.stateless_*`` ops use. :func:`zoo.data.load`
with ``augment=...`` draws a fresh seed per batch (or per element when
unbatched) from ``tf.data.Dataset.random(seed)``, different each epoch, so a
seeded pipeline is reproducible while every epoch sees new crops and flips.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from zoo._lazy import tf

__all__ = [
    "random_flip_left_right",
    "random_crop_with_padding",
    "cifar_augment",
    "random_cutout",
    "cifar_cutout_augment",
    "flip_augment",
    "AUGMENTATIONS",
    "get_augment",
]


def _as_batch(images: Any) -> tuple[Any, bool]:
    images = tf.convert_to_tensor(images)
    rank = images.shape.rank
    if rank == 3:
        return images[None], True
    if rank == 4:
        return images, False
    raise ValueError(f"expected an image (H, W, C) or a batch (N, H, W, C), got rank {rank}")


def _crop_flip(images: Any, seed: Any, padding: int, flip: bool) -> Any:
    """Random crop after zero padding and/or random horizontal flip, as ONE gather."""
    batch, single = _as_batch(images)
    height, width, channels = batch.shape[1], batch.shape[2], batch.shape[3]
    if height is None or width is None or channels is None:
        raise ValueError("augmentation needs images with a static (H, W, C) shape")
    n = tf.shape(batch)[0]
    if padding:
        batch = tf.pad(batch, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    padded_h, padded_w = height + 2 * padding, width + 2 * padding
    draws = tf.random.stateless_uniform(
        [n, 3], seed=seed, minval=0, maxval=2 * (2 * padding + 1), dtype=tf.int32
    )
    dy = draws[:, 0] % (2 * padding + 1)
    dx = draws[:, 1] % (2 * padding + 1)
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    if flip:
        mirrored = (draws[:, 2] % 2) == 1
        cols = tf.where(mirrored[:, None], width - 1 - cols, cols)
    cols = dx[:, None] + cols
    index = (
        tf.range(n)[:, None, None] * (padded_h * padded_w) + rows[:, :, None] * padded_w + cols[:, None, :]
    )
    flat = tf.reshape(batch, [-1, channels])
    out = tf.reshape(tf.gather(flat, tf.reshape(index, [-1])), [n, height, width, channels])
    return out[0] if single else out


def random_flip_left_right(images: Any, seed: Any) -> Any:
    """Mirror each image horizontally with probability 1/2.

    Args:
        images: An image ``(H, W, C)`` or a batch ``(N, H, W, C)`` with a static
            (H, W, C) shape, any dtype.
        seed: An int32/int64 tensor of shape ``(2,)``.

    Returns:
        The images, each flipped or not independently; same shape and dtype.
    """
    return _crop_flip(images, seed, padding=0, flip=True)


def random_crop_with_padding(images: Any, seed: Any, padding: int = 4) -> Any:
    """Zero-pad ``padding`` pixels on each side, then crop back to the original size at random.

    This is the standard CIFAR augmentation (He et al. 2015). Each image of a
    batch gets its own offsets; the work is one vectorised gather, so it is
    cheap on whole batches.

    Args:
        images: An image ``(H, W, C)`` or a batch ``(N, H, W, C)`` with a static
            (H, W, C) shape.
        seed: An int32/int64 tensor of shape ``(2,)``.
        padding: Pixels of zero padding per side.

    Returns:
        Images of the same shape and dtype.
    """
    return _crop_flip(images, seed, padding=padding, flip=False)


def cifar_augment(images: Any, seed: Any) -> Any:
    """Random crop with 4 pixels of zero padding, then a random horizontal flip.

    Args:
        images: An image ``(H, W, C)`` or a batch ``(N, H, W, C)``.
        seed: An int32/int64 tensor of shape ``(2,)``.

    Returns:
        Images of the same shape and dtype.
    """
    return _crop_flip(images, seed, padding=4, flip=True)


def random_cutout(images: Any, seed: Any, size: int = 16) -> Any:
    """Zero a ``size`` x ``size`` square at a random centre of each image (Cutout, DeVries & Taylor 2017).

    The centre is uniform over the whole image, so the square may be cut by the border,
    as in the paper.

    Args:
        images: An image ``(H, W, C)`` or a batch ``(N, H, W, C)`` with a static (H, W) shape.
        seed: An int32/int64 tensor of shape ``(2,)``.
        size: Side of the square in pixels.

    Returns:
        Images of the same shape and dtype.
    """
    batch, single = _as_batch(images)
    height, width = batch.shape[1], batch.shape[2]
    if height is None or width is None:
        raise ValueError("cutout needs images with a static (H, W) shape")
    n = tf.shape(batch)[0]
    draws = tf.random.stateless_uniform([n, 2], seed=seed, minval=0, maxval=height * width, dtype=tf.int32)
    top = draws[:, 0] % height - size // 2
    left = draws[:, 1] % width - size // 2
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)
    square = (in_rows[:, :, None] & in_cols[:, None, :])[..., None]
    out = tf.where(square, tf.zeros_like(batch), batch)
    return out[0] if single else out


def cifar_cutout_augment(images: Any, seed: Any) -> Any:
    """:func:`cifar_augment`, then a 16-pixel :func:`random_cutout`, each with a seed split from ``seed``."""
    crop_seed, cut_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    return random_cutout(cifar_augment(images, crop_seed), cut_seed, size=16)


def flip_augment(images: Any, seed: Any) -> Any:
    """Random horizontal flip only (image or batch)."""
    return random_flip_left_right(images, seed)


_BATCHABLE = (
    random_flip_left_right,
    random_crop_with_padding,
    cifar_augment,
    random_cutout,
    cifar_cutout_augment,
    flip_augment,
)

#: Augmentations ``zoo.data.load(augment=NAME)`` accepts by name.
AUGMENTATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "cifar": cifar_augment,
    "cifar_cutout": cifar_cutout_augment,
    "flip": flip_augment,
}


def is_builtin(augment: Any) -> bool:
    """Whether ``augment`` is a helper of this module (or a ``functools.partial`` of one).

    These accept whole batches, so :func:`zoo.data.load` applies them once per
    batch; other callables are applied image by image.
    """
    if isinstance(augment, str):
        return True
    if isinstance(augment, functools.partial):
        augment = augment.func
    return augment in _BATCHABLE


def get_augment(augment: str | Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Return the augmentation named ``augment`` (or ``augment`` itself when callable).

    Raises:
        ValueError: If the name is unknown.
    """
    if callable(augment):
        return augment
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r}; known: {sorted(AUGMENTATIONS)}")
    return AUGMENTATIONS[augment]
