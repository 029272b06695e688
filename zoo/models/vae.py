"""Variational autoencoder (Kingma and Welling 2013).

``vae`` returns a :class:`zoo.models._generative.VAE`, one Keras model that owns
a convolutional ``.encoder`` (image to posterior mean and log-variance) and
``.decoder`` (latent vector to Bernoulli logits), trained by its ``train_step``
on the negative ELBO of binarised images.
"""

from __future__ import annotations

from zoo._lazy import keras
from zoo.registry import register_model


def vae_encoder(
    *, latent_dim: int = 32, image_shape: tuple[int, int, int] = (28, 28, 1), units: int = 256
) -> keras.Model:
    """Build the VAE encoder: an image to ``[z_mean, z_log_var]``.

    ``conv1`` (32 3x3 filters, stride 2), ``conv2`` (64, stride 2), ``flatten``,
    ``dense`` (``units``, ReLU), then two linear heads ``z_mean`` and
    ``z_log_var``.

    Args:
        latent_dim: Size of the latent vector.
        image_shape: ``(H, W, C)`` with ``H`` and ``W`` divisible by 4.
        units: Width of the hidden dense layer.

    Returns:
        A ``keras.Model`` named ``"encoder"`` with two outputs.
    """
    images = keras.Input(shape=tuple(image_shape), name="image")
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv1")(
        images
    )
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="dense")(x)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(images, [z_mean, z_log_var], name="encoder")


def vae_decoder(
    *, latent_dim: int = 32, image_shape: tuple[int, int, int] = (28, 28, 1), units: int = 256
) -> keras.Model:
    """Build the VAE decoder: a latent vector to per-pixel Bernoulli logits.

    The mirror of :func:`vae_encoder`: ``dense`` (``units``, ReLU), ``project``
    to an ``(H/4, W/4, 64)`` map, ``deconv1`` (64 3x3 filters, stride 2),
    ``deconv2`` (32, stride 2) and ``logits`` (a stride-1 transposed convolution
    to ``C`` channels, no activation).

    Args:
        latent_dim: Size of the latent vector.
        image_shape: ``(H, W, C)`` with ``H`` and ``W`` divisible by 4.
        units: Width of the hidden dense layer.

    Returns:
        A ``keras.Model`` named ``"decoder"``.
    """
    height, width, channels = image_shape
    if height % 4 or width % 4:
        raise ValueError(f"image height and width must be divisible by 4, got {image_shape}")
    z = keras.Input(shape=(latent_dim,), name="z")
    x = keras.layers.Dense(units, activation="relu", name="dense")(z)
    x = keras.layers.Dense(height // 4 * width // 4 * 64, activation="relu", name="project")(x)
    x = keras.layers.Reshape((height // 4, width // 4, 64), name="reshape")(x)
    x = keras.layers.Conv2DTranspose(
        64, 3, strides=2, padding="same", activation="relu", name="deconv1"
    )(x)
    x = keras.layers.Conv2DTranspose(
        32, 3, strides=2, padding="same", activation="relu", name="deconv2"
    )(x)
    logits = keras.layers.Conv2DTranspose(channels, 3, padding="same", name="logits")(x)
    return keras.Model(z, logits, name="decoder")


@register_model(
    family="vae",
    display_name="VAE",
    paper="Kingma and Welling 2013, Auto-Encoding Variational Bayes",
    paper_url="https://arxiv.org/abs/1312.6114",
    task="image-generation",
    family_default=True,
    description="Convolutional VAE with a Bernoulli decoder for binarised 28x28 MNIST.",
)
def vae(
    *,
    latent_dim: int = 32,
    image_shape: tuple[int, int, int] = (28, 28, 1),
    units: int = 256,
) -> keras.Model:
    """Build a convolutional variational autoencoder.

    Encoder and decoder are :func:`vae_encoder` and :func:`vae_decoder`; the
    latent is reparameterised as ``z = mean + exp(log_var / 2) * eps``. With the
    defaults (28x28x1, 32 latent dimensions) it has 1,708,417 parameters (encoder 838,336,
    decoder 870,081). Call
    ``compile(optimizer=...)`` and ``fit`` on images in ``[0, 1]`` (binarised for
    a true Bernoulli likelihood); the loss is the negative ELBO in nats per
    image. ``encode``, ``decode``, ``sample`` and ``interpolate`` work on NumPy
    arrays.

    Args:
        latent_dim: Size of the latent vector.
        image_shape: ``(H, W, C)`` with ``H`` and ``W`` divisible by 4.
        units: Width of the hidden dense layers.

    Returns:
        A :class:`zoo.models._generative.VAE` named ``"vae"`` with ``.encoder``,
        ``.decoder`` and ``.latent_dim``.
    """
    from zoo.models._generative import VAE

    encoder = vae_encoder(latent_dim=latent_dim, image_shape=image_shape, units=units)
    decoder = vae_decoder(latent_dim=latent_dim, image_shape=image_shape, units=units)
    return VAE(encoder, decoder, latent_dim, name="vae")
