"""Metrics of the image-generation models: importance-sampled likelihood and sample quality.

Protocols (``zoo evaluate`` and ``tools/train.py`` use exactly these functions):

**Test log-likelihood of a VAE** (:func:`importance_sampled_nll`). For each test
image ``x`` (pixels binarised once, see :func:`binarize`), draw ``k`` latent
vectors ``z_1..z_k`` from the encoder's diagonal Gaussian ``q(z|x)`` and compute
the log importance weights ``log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)``
(Bernoulli decoder, standard normal prior). Then

* ``log p(x) ~= log (1/k) sum_i w_i`` (Burda et al. 2016, eq. 8), computed as a
  stable log-mean-exp in float64; it is a lower bound of ``log p(x)`` in
  expectation that tightens as ``k`` grows;
* ``ELBO(x) ~= (1/k) sum_i log w_i``, the usual evidence lower bound estimated
  with the same ``k`` samples.

``nll_nats`` and ``elbo_nats`` are ``-mean log p(x)`` and ``-mean ELBO(x)`` over
the images, in nats per image (lower is better; ``nll_nats <= elbo_nats``).
The latent noise comes from TensorFlow's stateless normal generator, seeded by
``seed`` and the batch index, so a run is reproducible.

**Sample quality** (:func:`sample_quality`). Images in ``[0, 1]`` are rounded
to 8-bit grey levels and fed through this zoo's LeNet-5 MNIST classifier
(``lenet5.mnist`` with its own preprocessing: 2 px zero padding to 32x32,
``x / 255``). The 84-d ``pre_logits`` features of the generated and of the real
images are summarised by their mean and covariance, and

* ``fid_lenet5`` is the Frechet distance between the two Gaussians
  (:func:`frechet_distance`; the FID of Heusel et al. 2017 with LeNet-5
  features instead of Inception-v3 ones, so its values are not comparable with
  published FIDs);
* ``confident_fraction`` is the fraction of generated images whose LeNet-5
  softmax probability of the predicted class is at least ``0.9``;
* ``class_coverage_entropy`` is the entropy of the histogram of predicted
  classes divided by ``log(10)``: 1 when the ten digits are equally frequent,
  0 when every sample is the same digit; ``class_share_ratio`` is the share of
  the most frequent class over that of the least frequent one.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.errors import InputError

#: Confidence threshold of ``confident_fraction``.
CONFIDENCE_THRESHOLD = 0.9
#: The weights entry whose ``pre_logits`` features define ``fid_lenet5``.
FEATURE_MODEL = "lenet5.mnist"


def log_mean_exp(values: Any, axis: int = 0) -> np.ndarray:
    """Return ``log(mean(exp(values)))`` along ``axis`` without overflow or underflow.

    Args:
        values: Array of log values (for example log importance weights).
        axis: Axis to average over.

    Returns:
        A float64 array with ``axis`` removed.
    """
    a = np.asarray(values, dtype="float64")
    if a.shape[axis] == 0:
        raise InputError("log_mean_exp needs at least one value")
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out = np.log(np.mean(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)
    return out


def binarize(images: Any, seed: int = 0) -> np.ndarray:
    """Return a fixed Bernoulli binarisation of images with pixel values in ``[0, 1]``.

    Pixel ``p`` becomes 1 with probability ``p``; the uniform draws come from
    ``numpy.random.default_rng(seed)`` in array order, so the same images and seed
    always give the same binary images (the evaluation protocol uses seed 0).

    Args:
        images: Float array with values in ``[0, 1]``.
        seed: Seed of the uniform draws.

    Returns:
        A float32 array of zeros and ones with the shape of ``images``.
    """
    x = np.asarray(images, dtype="float32")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise InputError("binarize expects pixel values in [0, 1]")
    u = np.random.default_rng(seed).random(x.shape, dtype="float32")
    return (u < x).astype("float32")


_WEIGHT_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _vae_weights_fn(vae: Any) -> Callable[..., Any]:
    """Return a compiled function ``(x, seed_pair, k) -> (k, n)`` log importance weights."""
    if vae in _WEIGHT_FNS:
        return _WEIGHT_FNS[vae]
    import keras
    import tensorflow as tf

    model = weakref.ref(vae)  # the cache must not keep the model alive
    if keras.backend.backend() == "tensorflow":

        @tf.function(reduce_retracing=True)
        def log_weights(x: Any, seed: Any, k: int) -> Any:
            eps = tf.random.stateless_normal((k, tf.shape(x)[0], model().latent_dim), seed=seed)
            return model().log_importance_weights(x, eps)

    else:
        from zoo.backend import compiled

        weights_of = compiled(lambda x, eps: model().log_importance_weights(x, eps))

        def log_weights(x: Any, seed: Any, k: int) -> Any:
            # The same noise as on TensorFlow, drawn on the host, so every backend sees one estimate.
            eps = tf.random.stateless_normal((k, len(x), model().latent_dim), seed=seed).numpy()
            return keras.ops.convert_to_numpy(weights_of(x, eps))

    _WEIGHT_FNS[vae] = log_weights
    return log_weights


def importance_sampled_nll(
    vae: Any,
    images: Any,
    *,
    num_samples: int = 1000,
    seed: int = 0,
    batch_size: int = 8,
    chunk: int = 250,
    progress: bool = False,
) -> dict[str, Any]:
    """Estimate a VAE's test log-likelihood by importance sampling (see the module docstring).

    Args:
        vae: A :class:`zoo.models._generative.VAE`.
        images: Binary images ``(n, H, W, C)`` (see :func:`binarize`).
        num_samples: ``k``, importance samples per image.
        seed: Seed of the latent noise.
        batch_size: Images per decoder call (the decoder sees ``batch_size * chunk`` latents).
        chunk: Samples per decoder call; ``num_samples`` need not be a multiple.
        progress: Show a progress bar on stderr (where it is a terminal).

    Returns:
        ``{"nll_nats", "elbo_nats", "num_examples", "num_samples"}`` plus the
        per-image arrays ``"log_px"`` and ``"elbo"`` (float64, nats).
    """
    x = np.asarray(images, dtype="float32")
    if x.ndim != 4 or x.shape[0] == 0:
        raise InputError(f"expected a non-empty batch of images (n, H, W, C), got shape {x.shape}")
    if num_samples < 1 or batch_size < 1 or chunk < 1:
        raise InputError("num_samples, batch_size and chunk must be positive")
    fn = _vae_weights_fn(vae)
    n = x.shape[0]
    log_px = np.empty(n, dtype="float64")
    elbo = np.empty(n, dtype="float64")
    starts: Any = range(0, n, batch_size)
    if progress:
        from zoo.progress import progress as bar

        starts = bar(starts, f"importance sampling (k={num_samples})")
    for b, start in enumerate(starts):
        batch = x[start : start + batch_size]
        m = batch.shape[0]
        if m < batch_size:  # pad to one shape so the function is traced once
            batch = np.concatenate([batch, np.zeros((batch_size - m, *x.shape[1:]), "float32")])
        total = np.full(batch_size, -np.inf)
        mean_w = np.zeros(batch_size)
        done = 0
        while done < num_samples:
            k = min(chunk, num_samples - done)
            w = np.asarray(fn(batch, np.array([seed, b * 1_000_003 + done], "int64"), k), "float64")
            total = np.logaddexp(total, np.log(k) + log_mean_exp(w, axis=0))
            mean_w += w.sum(axis=0)
            done += k
        log_px[start : start + m] = (total - math.log(num_samples))[:m]
        elbo[start : start + m] = (mean_w / num_samples)[:m]
    return {
        "nll_nats": float(-log_px.mean()),
        "elbo_nats": float(-elbo.mean()),
        "num_examples": n,
        "num_samples": num_samples,
        "log_px": log_px,
        "elbo": elbo,
    }


def gaussian_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and covariance (``ddof=1``) of a ``(n, d)`` feature array, in float64."""
    f = np.asarray(features, dtype="float64")
    if f.ndim != 2 or f.shape[0] < 2:
        raise InputError(f"need at least two feature vectors (n, d), got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Return the symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Return the Frechet distance between two Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``. The
    trace of the matrix square root is computed as the sum of the square roots of
    the eigenvalues of the symmetric matrix ``s1 sigma2 s1`` with ``s1 = sigma1^(1/2)``,
    which has the same eigenvalues as ``sigma1 sigma2`` and needs no SciPy.

    Args:
        mu1: Mean of the first Gaussian, shape ``(d,)``.
        sigma1: Covariance of the first Gaussian, ``(d, d)``.
        mu2: Mean of the second Gaussian.
        sigma2: Covariance of the second Gaussian.

    Returns:
        The squared Frechet (2-Wasserstein) distance, a float ``>= 0``.
    """
    mu1, mu2 = np.asarray(mu1, "float64"), np.asarray(mu2, "float64")
    sigma1, sigma2 = np.asarray(sigma1, "float64"), np.asarray(sigma2, "float64")
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise InputError("frechet_distance needs means (d,) and covariances (d, d) of one size")
    s1 = _sqrt_psd(sigma1)
    inner = s1 @ sigma2 @ s1
    trace_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None))))
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def to_uint8(images: Any) -> np.ndarray:
    """Round images with values in ``[0, 1]`` to 8-bit grey levels (as a PNG would store them)."""
    x = np.asarray(images, dtype="float32")
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype("uint8")


class FeatureExtractor:
    """LeNet-5 ``pre_logits`` features and class probabilities of 28x28 grey images.

    Args:
        weights: The classifier weights entry (default :data:`FEATURE_MODEL`).
        batch_size: Batch size of the forward passes.
    """

    def __init__(self, weights: str = FEATURE_MODEL, batch_size: int = 500) -> None:
        import keras

        import zoo.data
        from zoo.api import load, weights_entry

        entry = weights_entry(weights)
        classifier = load(entry.name)
        self.model = keras.Model(
            classifier.inputs, [classifier.get_layer("pre_logits").output, classifier.outputs[0]]
        )
        self.transform = zoo.data.image_transform(dict(entry.preprocessing))
        self.batch_size = batch_size

    def __call__(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(features (n, 84), probabilities (n, 10))`` of uint8 images ``(n, 28, 28, 1)``."""
        import keras

        x = np.asarray(images)
        if x.dtype != np.uint8:
            raise InputError("FeatureExtractor expects uint8 images; use to_uint8 first")
        feats, probs = [], []
        for start in range(0, x.shape[0], self.batch_size):
            batch = self.transform(x[start : start + self.batch_size])
            f, logits = self.model(batch, training=False)
            feats.append(keras.ops.convert_to_numpy(f))
            probs.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)))
        return np.concatenate(feats).astype("float64"), np.concatenate(probs).astype("float64")


def class_coverage(probabilities: Any, threshold: float = CONFIDENCE_THRESHOLD) -> dict[str, float]:
    """Summarise classifier probabilities of generated images.

    Args:
        probabilities: ``(n, num_classes)`` softmax outputs.
        threshold: Confidence threshold of ``confident_fraction``.

    Returns:
        ``confident_fraction``, ``class_coverage_entropy`` (normalised to ``[0, 1]``),
        ``class_share_ratio`` (largest over smallest class share, ``inf`` if a class is
        never predicted) and ``class_shares`` (a list, one share per class).
    """
    p = np.asarray(probabilities, dtype="float64")
    num_classes = p.shape[-1]
    counts = np.bincount(np.argmax(p, axis=-1), minlength=num_classes).astype("float64")
    shares = counts / counts.sum()
    nonzero = shares[shares > 0]
    entropy = float(-np.sum(nonzero * np.log(nonzero)) / math.log(num_classes))
    ratio = float(shares.max() / shares.min()) if shares.min() > 0 else math.inf
    return {
        "confident_fraction": float(np.mean(p.max(axis=-1) >= threshold)),
        "class_coverage_entropy": entropy,
        "class_share_ratio": ratio,
        "class_shares": shares.tolist(),
    }


def sample_quality(generated: Any, real: Any, extractor: FeatureExtractor | None = None) -> dict[str, Any]:
    """Compare generated images with real ones (see the module docstring for the protocol).

    Args:
        generated: Generated images ``(n, 28, 28, 1)``, uint8 or floats in ``[0, 1]``.
        real: Real images, in the same form.
        extractor: A :class:`FeatureExtractor` to reuse (default: a new one).

    Returns:
        ``fid_lenet5`` and the :func:`class_coverage` values of ``generated``.
    """
    extractor = extractor or FeatureExtractor()
    g = generated if np.asarray(generated).dtype == np.uint8 else to_uint8(generated)
    r = real if np.asarray(real).dtype == np.uint8 else to_uint8(real)
    g_feats, g_probs = extractor(g)
    r_feats, _ = extractor(r)
    fid = frechet_distance(*gaussian_statistics(g_feats), *gaussian_statistics(r_feats))
    return {"fid_lenet5": fid, **class_coverage(g_probs)}
