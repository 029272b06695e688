"""DCGAN (Radford, Metz and Chintala 2015).

``dcgan`` returns a :class:`zoo.models._generative.DCGAN`, one Keras model that
owns both halves: ``.generator`` (latent vector to image) and
``.discriminator`` (image to a real/fake logit), trained together by its
``train_step`` with the non-saturating GAN loss.
"""

from __future__ import annotations

from typing import Any

from zoo._lazy import keras
from zoo.registry import register_model

_SIZES = (28, 32)


def _check_size(image_size: int) -> None:
    if image_size not in _SIZES:
        raise ValueError(f"image_size must be one of {_SIZES}, got {image_size!r}")


def _dcgan_init() -> Any:
    """Return the DCGAN paper's weight initializer, N(0, 0.02)."""
    return keras.initializers.RandomNormal(stddev=0.02)


def dcgan_generator(
    *, latent_dim: int = 100, image_size: int = 28, channels: int = 1, filters: int = 64
) -> keras.Model:
    """Build the DCGAN generator: a latent vector to an image in ``[-1, 1]``.

    ``project`` (a bias-free ``Dense`` reshaped to a ``base x base x 4*filters``
    map, with base 7 for 28x28 images and 4 for 32x32), batch norm, ReLU, three 5x5
    transposed convolutions (``deconv1`` with 2*filters, ``deconv2`` with filters,
    ``deconv3`` with ``channels`` and ``tanh``) that double the size (``deconv1``
    keeps it at 28x28 to go 7 -> 7 -> 14 -> 28), with batch norm and ReLU between.

    Args:
        latent_dim: Size of the latent vector.
        image_size: 28 or 32.
        channels: Image channels.
        filters: Width of the last hidden layer; the others are 2x and 4x.

    Returns:
        A ``keras.Model`` named ``"generator"``.
    """
    _check_size(image_size)
    base = 7 if image_size == 28 else 4
    init = _dcgan_init()
    z = keras.Input(shape=(latent_dim,), name="z")
    x = keras.layers.Dense(
        base * base * filters * 4, use_bias=False, kernel_initializer=init, name="project"
    )(z)
    x = keras.layers.Reshape((base, base, filters * 4), name="reshape")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="project_bn")(x)
    x = keras.layers.ReLU(name="project_relu")(x)
    first_stride = 1 if image_size == 28 else 2
    for index, (width, stride) in enumerate(((filters * 2, first_stride), (filters, 2)), start=1):
        x = keras.layers.Conv2DTranspose(
            width,
            5,
            strides=stride,
            padding="same",
            use_bias=False,
            kernel_initializer=init,
            name=f"deconv{index}",
        )(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"deconv{index}_bn")(x)
        x = keras.layers.ReLU(name=f"deconv{index}_relu")(x)
    images = keras.layers.Conv2DTranspose(
        channels,
        5,
        strides=2,
        padding="same",
        activation="tanh",
        kernel_initializer=init,
        name="deconv3",
    )(x)
    return keras.Model(z, images, name="generator")


def dcgan_discriminator(*, image_size: int = 28, channels: int = 1, filters: int = 64) -> keras.Model:
    """Build the DCGAN discriminator: an image in ``[-1, 1]`` to one real/fake logit.

    The mirror of :func:`dcgan_generator`: 5x5 convolutions ``conv1`` (filters,
    stride 2, no batch norm), ``conv2`` (2*filters, stride 2) and ``conv3``
    (4*filters, stride 1 for 28x28 images and 2 for 32x32) with batch norm and
    LeakyReLU(0.2), no pooling, then ``flatten`` and ``logit``, a ``Dense(1)``.

    Args:
        image_size: 28 or 32.
        channels: Image channels.
        filters: Width of the first layer; the others are 2x and 4x.

    Returns:
        A ``keras.Model`` named ``"discriminator"``.
    """
    _check_size(image_size)
    init = _dcgan_init()
    images = keras.Input(shape=(image_size, image_size, channels), name="image")
    last_stride = 1 if image_size == 28 else 2
    x = images
    for index, (width, stride) in enumerate(
        ((filters, 2), (filters * 2, 2), (filters * 4, last_stride)), start=1
    ):
        x = keras.layers.Conv2D(
            width,
            5,
            strides=stride,
            padding="same",
            use_bias=index == 1,
            kernel_initializer=init,
            name=f"conv{index}",
        )(x)
        if index > 1:
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"conv{index}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv{index}_lrelu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logit = keras.layers.Dense(1, kernel_initializer=init, name="logit")(x)
    return keras.Model(images, logit, name="discriminator")


@register_model(
    family="dcgan",
    display_name="DCGAN",
    paper=(
        "Radford et al. 2015, Unsupervised Representation Learning with Deep "
        "Convolutional Generative Adversarial Networks"
    ),
    paper_url="https://arxiv.org/abs/1511.06434",
    task="image-generation",
    family_default=True,
    description="Deep convolutional GAN for 28x28 (MNIST-like) or 32x32 images.",
)
def dcgan(
    *,
    latent_dim: int = 100,
    image_size: int = 28,
    channels: int = 1,
    filters: int = 64,
) -> keras.Model:
    """Build a DCGAN: generator and discriminator in one trainable model.

    With the defaults (28x28x1 images, 100-dimensional latent) the generator has
    2,280,897 trainable parameters and the discriminator 1,038,977 (3,319,874 in
    all). Call ``compile(d_optimizer=..., g_optimizer=...)`` (both default to
    Adam(2e-4, beta_1=0.5), as in the paper) and ``fit`` on images scaled to
    ``[-1, 1]``; ``generate(n, seed)`` and ``interpolate(a_seed, b_seed, steps)``
    return images in ``[0, 1]``.

    Args:
        latent_dim: Size of the latent vector.
        image_size: 28 or 32.
        channels: Image channels (1 for MNIST, 3 for colour).
        filters: Base width of both networks.

    Returns:
        A :class:`zoo.models._generative.DCGAN` named ``"dcgan"`` with
        ``.generator``, ``.discriminator`` and ``.latent_dim``.
    """
    from zoo.models._generative import DCGAN

    generator = dcgan_generator(
        latent_dim=latent_dim, image_size=image_size, channels=channels, filters=filters
    )
    discriminator = dcgan_discriminator(image_size=image_size, channels=channels, filters=filters)
    return DCGAN(generator, discriminator, latent_dim, name="dcgan")
