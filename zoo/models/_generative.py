"""Model classes of the generative families: :class:`DCGAN` and :class:`VAE`.

Each class owns two functional sub-networks and implements the family's training
objective in ``train_step``, so ``model.compile(...)`` followed by ``model.fit``
trains it. The ``train_step`` methods use ``tf.GradientTape`` and therefore
need the TensorFlow backend; building, inference, saving and loading work on any
backend.

This module imports Keras at import time, so family modules import it only
inside builder functions (see :func:`zoo.models._common.register_custom_objects`).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


def _require_tensorflow() -> Any:
    """Return the ``tensorflow`` module, or raise if Keras runs on another backend."""
    if keras.backend.backend() != "tensorflow":
        raise NotImplementedError(
            "training zoo's DCGAN and VAE needs the TensorFlow backend: run it with "
            f"KERAS_BACKEND=tensorflow (the active backend is {keras.backend.backend()!r}); "
            "inference, sampling and metrics run on every backend"
        )
    import tensorflow as tf

    return tf


def _latents(seed: int | None, n: int, latent_dim: int) -> np.ndarray:
    """Draw ``n`` standard-normal latent vectors from a seeded NumPy generator."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, latent_dim)).astype("float32")


def _batched(fn: Any, x: np.ndarray, batch_size: int = 512) -> Any:
    """Apply ``fn`` to ``x`` in batches (bounded memory) and concatenate the NumPy results."""
    outs = [fn(x[i : i + batch_size]) for i in range(0, max(len(x), 1), batch_size)]
    if isinstance(outs[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*outs, strict=True))
    return np.concatenate(outs)


def _lerp_latents(a: np.ndarray, b: np.ndarray, steps: int, spherical: bool) -> np.ndarray:
    """Return ``steps`` latent vectors from ``a`` to ``b`` (both ends included)."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps!r}")
    t = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    if spherical:
        cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        omega = np.arccos(np.clip(cos, -1.0, 1.0))
        if omega > 1e-6:
            return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b).astype("float32") / np.sin(omega)
    return ((1.0 - t) * a + t * b).astype("float32")


@keras.saving.register_keras_serializable(package="zoo")
class DCGAN(keras.Model):
    """A DCGAN: generator and discriminator trained with the non-saturating GAN loss.

    Calling the model maps latent vectors to generated images in ``[-1, 1]``.
    Training data for ``fit`` must be images scaled to ``[-1, 1]`` (the
    generator ends in ``tanh``); labels, if the dataset yields any, are ignored.

    Example:
        ``gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5)); gan.fit(images)``

    Args:
        generator: Functional model from ``(latent_dim,)`` to images.
        discriminator: Functional model from images to one real/fake logit.
        latent_dim: Size of the latent vector.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_optimizer: Any = None
        self.g_optimizer: Any = None
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """Return generator images (in ``[-1, 1]``) for latent vectors ``inputs``."""
        return self.generator(inputs, training=training)

    def compile(
        self,
        d_optimizer: Any = None,
        g_optimizer: Any = None,
        **kwargs: Any,
    ) -> None:
        """Configure training; both optimizers default to Adam(2e-4, beta_1=0.5).

        Args:
            d_optimizer: Optimizer (or its identifier) of the discriminator.
            g_optimizer: Optimizer (or its identifier) of the generator.
            **kwargs: Passed on to ``keras.Model.compile`` (e.g. ``run_eagerly``).
        """
        super().compile(**kwargs)
        self.d_optimizer = (
            keras.optimizers.get(d_optimizer)
            if d_optimizer is not None
            else keras.optimizers.Adam(2e-4, beta_1=0.5)
        )
        self.g_optimizer = (
            keras.optimizers.get(g_optimizer)
            if g_optimizer is not None
            else keras.optimizers.Adam(2e-4, beta_1=0.5)
        )
        # Create the optimizer variables now, so that a saved ``.keras`` file always
        # holds (and reloads) the full optimizer state.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self) -> dict[str, Any]:
        """Return the two optimizers' configs so a saved ``.keras`` file recompiles."""
        if not self.compiled or self.d_optimizer is None:
            return {}
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
        }

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Recompile from :meth:`get_compile_config`'s output."""
        if not config:
            return
        self.compile(
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
        )

    @property
    def metrics(self) -> list[Any]:
        """The loss trackers, reset by Keras at the start of every epoch."""
        return [self.d_loss_tracker, self.g_loss_tracker]

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        """Train with ``keras.Model.fit`` (TensorFlow backend only: see :func:`_require_tensorflow`)."""
        _require_tensorflow()
        return super().fit(*args, **kwargs)

    def train_step(self, data: Any) -> dict[str, Any]:
        """Run one discriminator update and one generator update on a batch of images."""
        tf = _require_tensorflow()
        if self.d_optimizer is None:
            raise RuntimeError("call compile() before fit()")
        real = data[0] if isinstance(data, (tuple, list)) else data
        real = ops.cast(real, self.compute_dtype)
        batch = ops.shape(real)[0]
        bce = keras.losses.BinaryCrossentropy(from_logits=True)

        z = tf.random.normal((batch, self.latent_dim))
        fake = self.generator(z, training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = bce(ops.ones_like(real_logits), real_logits) + bce(
                ops.zeros_like(fake_logits), fake_logits
            )
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights, strict=True))

        z = tf.random.normal((batch, self.latent_dim))
        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(self.generator(z, training=True), training=True)
            g_loss = bce(ops.ones_like(fake_logits), fake_logits)
        weights = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights, strict=True))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    def generate(self, n: int = 16, seed: int | None = None) -> np.ndarray:
        """Generate ``n`` images with pixel values in ``[0, 1]``.

        Args:
            n: Number of images.
            seed: Seed of the latent vectors; the same seed gives the same images.

        Returns:
            A float32 array of shape ``(n, H, W, C)``.
        """
        return self._images(_latents(seed, n, self.latent_dim))

    def interpolate(self, a_seed: int, b_seed: int, steps: int = 8, *, spherical: bool = False) -> np.ndarray:
        """Generate images along a path between the latent vectors of two seeds.

        Args:
            a_seed: Seed of the first latent vector (as in :meth:`generate` with ``n=1``).
            b_seed: Seed of the last latent vector.
            steps: Number of images, both ends included.
            spherical: Interpolate along the great circle instead of a straight line.

        Returns:
            A float32 array of shape ``(steps, H, W, C)`` with values in ``[0, 1]``.
        """
        a = _latents(a_seed, 1, self.latent_dim)[0]
        b = _latents(b_seed, 1, self.latent_dim)[0]
        return self._images(_lerp_latents(a, b, steps, spherical))

    def _images(self, z: np.ndarray) -> np.ndarray:
        images = _batched(lambda b: ops.convert_to_numpy(self.generator(b, training=False)), z)
        return np.clip((images.astype("float32") + 1.0) / 2.0, 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        """Return the config, with both sub-networks serialised."""
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DCGAN:
        """Rebuild a DCGAN from :meth:`get_config`'s output."""
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="zoo")
class VAE(keras.Model):
    """A variational autoencoder with a Bernoulli decoder for binarised images.

    Calling the model encodes images to the posterior mean and returns the
    decoder's Bernoulli logits (deterministic, so it serves golden tests). ``fit``
    minimises the negative ELBO (summed over pixels, averaged over the batch)
    using the reparameterisation trick; input pixels should be in ``[0, 1]``,
    binarised, or grey levels with ``dynamic_binarization=True``. Labels, if the
    dataset yields any, are ignored. The ``loss`` metric is always the full
    negative ELBO, also while the KL term is warmed up.

    Args:
        encoder: Functional model from images to ``[z_mean, z_log_var]``.
        decoder: Functional model from ``(latent_dim,)`` to per-pixel logits.
        latent_dim: Size of the latent vector.
        kl_warmup_steps: Scale the KL term of the training loss by
            ``min(1, step / kl_warmup_steps)`` (0: no warm-up).
        dynamic_binarization: In ``train_step``, replace each pixel value ``p`` by
            a fresh Bernoulli(``p``) sample at every step, so every epoch sees a new
            binarisation of the grey-level training images.
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        latent_dim: int,
        *,
        kl_warmup_steps: int = 0,
        dynamic_binarization: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = int(latent_dim)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.dynamic_binarization = bool(dynamic_binarization)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """Return the decoder's logits at the posterior mean of ``inputs``."""
        z_mean, _ = self.encoder(inputs, training=training)
        return self.decoder(z_mean, training=training)

    @property
    def metrics(self) -> list[Any]:
        """The loss trackers, reset by Keras at the start of every epoch."""
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    @staticmethod
    def _bernoulli_nll(x: Any, logits: Any) -> Any:
        """Return ``-log p(x | logits)`` summed over all but the first axis (stable BCE)."""
        per_pixel = ops.maximum(logits, 0.0) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
        return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)

    def _elbo_terms(self, x: Any, eps: Any, training: bool) -> tuple[Any, Any]:
        """Return per-example reconstruction NLL and KL divergence (in nats)."""
        z_mean, z_log_var = self.encoder(x, training=training)
        z = z_mean + ops.exp(0.5 * z_log_var) * eps
        logits = self.decoder(z, training=training)
        reconstruction = self._bernoulli_nll(x, logits)
        kl = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        return reconstruction, kl

    def log_importance_weights(self, x: Any, eps: Any) -> Any:
        """Return ``log p(x|z) + log p(z) - log q(z|x)`` for ``z = mean + std * eps``.

        The building block of the importance-sampled likelihood
        (:func:`zoo.tasks.generative_metrics.importance_sampled_nll`): averaging the
        weights over ``k`` samples estimates the ELBO, their log-mean-exp ``log p(x)``.

        Args:
            x: Binary images ``(n, H, W, C)``.
            eps: Standard normal noise ``(k, n, latent_dim)``.

        Returns:
            A ``(k, n)`` tensor of log weights, in nats.
        """
        x = ops.cast(x, self.compute_dtype)
        z_mean, z_log_var = self.encoder(x, training=False)
        k, n = ops.shape(eps)[0], ops.shape(eps)[1]
        z = z_mean[None] + ops.exp(0.5 * z_log_var)[None] * eps
        logits = self.decoder(ops.reshape(z, (k * n, self.latent_dim)), training=False)
        targets = ops.reshape(ops.broadcast_to(x[None], (k, *ops.shape(x))), ops.shape(logits))
        log_px_z = -ops.reshape(self._bernoulli_nll(targets, logits), (k, n))
        log_2pi = float(np.log(2.0 * np.pi))
        log_pz = -0.5 * ops.sum(ops.square(z) + log_2pi, axis=-1)
        log_qz = -0.5 * ops.sum(ops.square(eps) + z_log_var[None] + log_2pi, axis=-1)
        return log_px_z + log_pz - log_qz

    def _update(self, reconstruction: Any, kl: Any) -> dict[str, Any]:
        self.loss_tracker.update_state(reconstruction + kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        """Train with ``keras.Model.fit`` (TensorFlow backend only: see :func:`_require_tensorflow`)."""
        _require_tensorflow()
        return super().fit(*args, **kwargs)

    def train_step(self, data: Any) -> dict[str, Any]:
        """Take one gradient step on the negative ELBO of a batch."""
        tf = _require_tensorflow()
        x = data[0] if isinstance(data, (tuple, list)) else data
        x = ops.cast(x, self.compute_dtype)
        if self.dynamic_binarization:
            x = ops.cast(tf.random.uniform(ops.shape(x)) < x, self.compute_dtype)
        eps = tf.random.normal((ops.shape(x)[0], self.latent_dim))
        beta = 1.0
        if self.kl_warmup_steps > 0:
            step = ops.cast(self.optimizer.iterations + 1, "float32")
            beta = ops.minimum(1.0, step / float(self.kl_warmup_steps))
        with tf.GradientTape() as tape:
            reconstruction, kl = self._elbo_terms(x, eps, training=True)
            loss = ops.mean(reconstruction + beta * kl)
        weights = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
        return self._update(reconstruction, kl)

    def test_step(self, data: Any) -> dict[str, Any]:
        """Estimate the negative ELBO of a batch with one latent sample."""
        tf = _require_tensorflow()
        x = data[0] if isinstance(data, (tuple, list)) else data
        x = ops.cast(x, self.compute_dtype)
        eps = tf.random.normal((ops.shape(x)[0], self.latent_dim))
        reconstruction, kl = self._elbo_terms(x, eps, training=False)
        return self._update(reconstruction, kl)

    def negative_elbo(self, x: Any, seed: int | None = None) -> np.ndarray:
        """Return a one-sample estimate of each image's negative ELBO, in nats.

        Args:
            x: Images of shape ``(n, H, W, C)`` with pixels in ``[0, 1]``.
            seed: Seed of the latent noise.

        Returns:
            A float array of shape ``(n,)``; its mean is an upper bound estimate of
            the test negative log-likelihood.
        """
        x = np.asarray(x, dtype="float32")
        eps = _latents(seed, x.shape[0], self.latent_dim)
        reconstruction, kl = self._elbo_terms(x, eps, training=False)
        return ops.convert_to_numpy(reconstruction + kl)

    def encode(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return the posterior ``(mean, log_var)`` of images ``x``, each ``(n, latent_dim)``."""

        def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            z_mean, z_log_var = self.encoder(batch, training=False)
            return ops.convert_to_numpy(z_mean), ops.convert_to_numpy(z_log_var)

        return _batched(run, np.asarray(x, dtype="float32"))

    def decode(self, z: Any) -> np.ndarray:
        """Return pixel probabilities ``(n, H, W, C)`` for latent vectors ``z``."""

        def run(batch: np.ndarray) -> np.ndarray:
            return ops.convert_to_numpy(ops.sigmoid(self.decoder(batch, training=False)))

        return _batched(run, np.asarray(z, dtype="float32"))

    def sample(self, n: int = 16, seed: int | None = None) -> np.ndarray:
        """Decode ``n`` latent vectors drawn from the prior into pixel probabilities.

        Args:
            n: Number of images.
            seed: Seed of the latent vectors; the same seed gives the same images.

        Returns:
            A float32 array of shape ``(n, H, W, C)`` with values in ``[0, 1]``.
        """
        return self.decode(_latents(seed, n, self.latent_dim))

    def interpolate(self, a: Any, b: Any, steps: int = 8, *, spherical: bool = False) -> np.ndarray:
        """Decode a path between two images, two latent vectors or two seeds.

        Args:
            a: An image ``(H, W, C)`` (encoded to its posterior mean), a latent
                vector ``(latent_dim,)``, or an integer seed (the latent vector that
                :meth:`sample` draws with ``n=1`` and that seed).
            b: The other end, in any of the same forms.
            steps: Number of images, both ends included.
            spherical: Interpolate along the great circle instead of a straight line.

        Returns:
            A float32 array of shape ``(steps, H, W, C)`` with values in ``[0, 1]``.
        """
        ends = []
        for end in (a, b):
            if isinstance(end, (int, np.integer)) and not isinstance(end, bool):
                ends.append(_latents(int(end), 1, self.latent_dim)[0])
                continue
            end = np.asarray(end, dtype="float32")
            if end.shape != (self.latent_dim,):
                end = self.encode(end[None])[0][0]
            ends.append(end)
        return self.decode(_lerp_latents(ends[0], ends[1], steps, spherical))

    def get_config(self) -> dict[str, Any]:
        """Return the config, with both sub-networks serialised."""
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "latent_dim": self.latent_dim,
            "kl_warmup_steps": self.kl_warmup_steps,
            "dynamic_binarization": self.dynamic_binarization,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VAE:
        """Rebuild a VAE from :meth:`get_config`'s output."""
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)
