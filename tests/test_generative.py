"""Generative models: VAE/DCGAN APIs, the likelihood and sample-quality estimators, zoo sample."""

from __future__ import annotations

import json
import math
import os

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import zoo
from tests.helpers import DATA_DIR  # noqa: E402
from zoo.cli import cli
from zoo.errors import InputError
from zoo.models._generative import VAE
from zoo.tasks import generate as generative
from zoo.tasks import generative_metrics as gm
from zoo.weights.manifest import load_manifest

PACKAGED = set(load_manifest())
needs = {
    name: pytest.mark.skipif(name not in PACKAGED, reason=f"{name} is not packaged yet")
    for name in ("vae.mnist", "dcgan.mnist", "lenet5.mnist")
}
needs_mnist = pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no MNIST under {DATA_DIR}")


@pytest.fixture(scope="module")
def small_vae():
    keras.utils.set_random_seed(0)
    return zoo.build("vae", latent_dim=8, units=32, filters=8)


@pytest.fixture(scope="module")
def small_gan():
    keras.utils.set_random_seed(0)
    return zoo.build("dcgan", latent_dim=16, filters=8)


# --- APIs ---------------------------------------------------------------------------------------


def test_vae_api_shapes_and_determinism(small_vae):
    x = gm.binarize(np.random.default_rng(1).random((5, 28, 28, 1)), seed=0)
    mean, log_var = small_vae.encode(x)
    assert mean.shape == log_var.shape == (5, 8)
    probs = small_vae.decode(mean)
    assert probs.shape == (5, 28, 28, 1) and 0.0 <= probs.min() and probs.max() <= 1.0
    a = small_vae.sample(6, seed=4)
    assert a.shape == (6, 28, 28, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, small_vae.sample(6, seed=4))
    assert not np.array_equal(a, small_vae.sample(6, seed=5))
    walk = small_vae.interpolate(4, 9, steps=5)
    assert walk.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(walk[0], small_vae.sample(1, seed=4)[0], atol=1e-6)
    np.testing.assert_allclose(walk[-1], small_vae.sample(1, seed=9)[0], atol=1e-6)
    assert small_vae.interpolate(x[0], x[1], steps=3).shape == (3, 28, 28, 1)
    np.testing.assert_allclose(
        small_vae.interpolate(x[0], x[1], steps=3)[0], small_vae.decode(mean[:1])[0], atol=1e-5
    )
    # call() is the deterministic reconstruction used by golden tests
    logits = keras.ops.convert_to_numpy(small_vae(x, training=False))
    np.testing.assert_allclose(logits, keras.ops.convert_to_numpy(small_vae(x, training=False)))
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), probs, atol=1e-5)


@pytest.mark.tensorflow_only("training the VAE needs TensorFlow")
def test_vae_trains_with_dynamic_binarization_and_kl_warmup(small_vae):
    vae = zoo.build("vae", latent_dim=4, units=16, filters=4)
    vae.dynamic_binarization = True
    vae.kl_warmup_steps = 10
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    grey = np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")
    history = vae.fit(grey, batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert history["loss"][0] == pytest.approx(
        history["reconstruction_loss"][0] + history["kl_loss"][0], rel=1e-4
    )
    config = vae.get_config()
    assert config["dynamic_binarization"] is True and config["kl_warmup_steps"] == 10
    clone = VAE.from_config(config)
    assert clone.dynamic_binarization and clone.kl_warmup_steps == 10


def test_dcgan_api_shapes_and_determinism(small_gan):
    a = small_gan.generate(4, seed=3)
    assert a.shape == (4, 28, 28, 1) and 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, small_gan.generate(4, seed=3))
    assert not np.array_equal(a, small_gan.generate(4, seed=8))
    walk = small_gan.interpolate(3, 8, steps=4)
    np.testing.assert_allclose(walk[0], small_gan.generate(1, seed=3)[0], atol=1e-6)
    np.testing.assert_allclose(walk[-1], small_gan.generate(1, seed=8)[0], atol=1e-6)
    z = np.random.default_rng(0).standard_normal((2, 16)).astype("float32")
    images = keras.ops.convert_to_numpy(small_gan(z, training=False))
    np.testing.assert_allclose(np.clip((images + 1) / 2, 0, 1), small_gan._images(z), atol=1e-6)


def test_generative_helpers_dispatch(small_vae, small_gan):
    for model in (small_vae, small_gan):
        assert generative.generate(model, 3, seed=1).shape == (3, 28, 28, 1)
        walks = generative.interpolations(model, rows=2, steps=3, seed=5)
        assert walks.shape == (6, 28, 28, 1)
        np.testing.assert_allclose(walks[3], generative.generate(model, 1, seed=7)[0], atol=1e-6)
    with pytest.raises(InputError):
        generative.generate(zoo.build("lenet5"), 2)
    with pytest.raises(InputError):
        generative.generate(small_gan, 0)


# --- importance-sampled likelihood --------------------------------------------------------------


def test_log_mean_exp_is_stable_and_exact():
    values = np.array([[0.1, -2.0], [1.5, -3.0], [0.3, -1.0]])
    np.testing.assert_allclose(
        gm.log_mean_exp(values, axis=0), np.log(np.mean(np.exp(values), axis=0)), rtol=1e-12
    )
    np.testing.assert_allclose(gm.log_mean_exp(np.array([1000.0, 1000.0])), 1000.0)
    np.testing.assert_allclose(
        gm.log_mean_exp(np.array([-1000.0, -1000.0 + math.log(3)])), -1000.0 + math.log(2.0)
    )
    assert gm.log_mean_exp(np.array([-np.inf, 0.0])) == pytest.approx(-math.log(2))


def _tiny_vae(mean, log_var, weight, bias):
    """A VAE on 2x2 images with a constant posterior and logits ``weight * z + bias``."""
    latent = len(mean)
    images = keras.Input((2, 2, 1))
    flat = keras.layers.Flatten()(images)
    heads = [
        keras.layers.Dense(
            latent, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(v)
        )(flat)
        for v in (mean, log_var)
    ]
    encoder = keras.Model(images, heads)
    z = keras.Input((latent,))
    logits = keras.layers.Dense(
        4,
        kernel_initializer=keras.initializers.Constant(weight),
        bias_initializer=keras.initializers.Constant(bias),
    )(z)
    decoder = keras.Model(z, keras.layers.Reshape((2, 2, 1))(logits))
    return VAE(encoder, decoder, latent)


def _exact_log_px(x, weight, bias):
    """log p(x) of the one-dimensional tiny VAE by quadrature over z."""
    z = np.linspace(-10, 10, 20001)
    logits = weight * z[:, None] + np.asarray(bias)[None, :]
    log_px_z = np.sum(x[None, :] * -np.logaddexp(0, -logits) + (1 - x[None, :]) * -np.logaddexp(0, logits), 1)
    log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    integrand = log_px_z + log_prior
    top = integrand.max()
    return top + math.log(np.trapezoid(np.exp(integrand - top), z))


def test_importance_sampling_matches_the_exact_likelihood():
    # q(z|x) wider than the prior keeps the importance weights bounded (finite variance)
    bias = [0.5, -1.0, 2.0, -0.3]
    vae = _tiny_vae([-0.3], [math.log(1.5)], 1.5, bias)
    x = np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 0]], "float32")
    exact = np.array([_exact_log_px(row, 1.5, np.array(bias)) for row in x])
    result = gm.importance_sampled_nll(vae, x.reshape(3, 2, 2, 1), num_samples=5000, seed=0, chunk=1000)
    np.testing.assert_allclose(result["log_px"], exact, atol=0.03)
    assert result["nll_nats"] == pytest.approx(-exact.mean(), abs=0.03)
    # Jensen: the log of the mean weight is never below the mean log weight (the ELBO)
    assert (result["log_px"] >= result["elbo"]).all()
    assert result["elbo_nats"] > result["nll_nats"] + 0.01
    # more samples, tighter bound: k=1 is the ELBO in expectation
    one = gm.importance_sampled_nll(vae, x.reshape(3, 2, 2, 1), num_samples=1, seed=0)
    assert one["nll_nats"] == pytest.approx(one["elbo_nats"])


def test_importance_sampling_is_exact_when_the_decoder_ignores_z():
    # q(z|x) = p(z) and logits independent of z: every weight equals p(x)
    bias = [1.0, -2.0, 0.0, 3.0]
    vae = _tiny_vae([0.0, 0.0], [0.0, 0.0], 0.0, bias)
    x = np.array([[1, 0, 1, 1]], "float32")
    p = 1 / (1 + np.exp(-np.array(bias)))
    exact = float(np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)))
    result = gm.importance_sampled_nll(vae, x.reshape(1, 2, 2, 1), num_samples=7, chunk=3)
    assert result["nll_nats"] == pytest.approx(-exact, abs=1e-5)
    assert result["elbo_nats"] == pytest.approx(-exact, abs=1e-5)


def test_importance_sampling_is_seeded_and_batch_padding_is_harmless(small_vae):
    x = gm.binarize(np.random.default_rng(2).random((5, 28, 28, 1)), seed=0)
    a = gm.importance_sampled_nll(small_vae, x, num_samples=20, seed=3, batch_size=4, chunk=8)
    b = gm.importance_sampled_nll(small_vae, x, num_samples=20, seed=3, batch_size=4, chunk=8)
    np.testing.assert_array_equal(a["log_px"], b["log_px"])
    assert a["num_examples"] == 5 and (a["log_px"] >= a["elbo"]).all()
    single = gm.importance_sampled_nll(small_vae, x[:4], num_samples=20, seed=3, batch_size=4, chunk=8)
    np.testing.assert_allclose(single["log_px"], a["log_px"][:4], rtol=1e-6)
    with pytest.raises(InputError):
        gm.importance_sampled_nll(small_vae, x[0], num_samples=2)


def test_binarize_is_fixed_by_its_seed():
    grey = np.random.default_rng(0).random((50, 28, 28, 1)).astype("float32")
    a = gm.binarize(grey, seed=0)
    np.testing.assert_array_equal(a, gm.binarize(grey, seed=0))
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert abs(a.mean() - grey.mean()) < 0.01
    assert not np.array_equal(a, gm.binarize(grey, seed=1))
    with pytest.raises(InputError):
        gm.binarize(grey * 2)


# --- Frechet distance and class coverage ------------------------------------------------------


def test_frechet_distance_matches_closed_forms():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    a, b = rng.uniform(0.1, 3, 4), rng.uniform(0.1, 3, 4)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert gm.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    assert gm.frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-10)


def test_frechet_distance_matches_a_direct_eigenvalue_computation():
    rng = np.random.default_rng(1)
    for d in (2, 5, 12):
        m1, m2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
        s1, s2 = m1 @ m1.T + 0.1 * np.eye(d), m2 @ m2.T + 0.1 * np.eye(d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        # tr sqrt(s1 s2) = sum of square roots of the (real, positive) eigenvalues of s1 s2
        tr_sqrt = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real))
        direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
        assert gm.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-8)
        assert gm.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(gm.frechet_distance(mu2, s2, mu1, s1))
    with pytest.raises(InputError):
        gm.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_gaussian_statistics_of_samples_converge():
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    feats = rng.multivariate_normal([1.0, -1.0], cov, size=20000)
    mu, sigma = gm.gaussian_statistics(feats)
    np.testing.assert_allclose(mu, [1.0, -1.0], atol=0.05)
    np.testing.assert_allclose(sigma, cov, atol=0.06)
    assert gm.frechet_distance(mu, sigma, [1.0, -1.0], cov) < 0.01


def test_class_coverage():
    uniform = np.eye(10)[np.arange(100) % 10]
    result = gm.class_coverage(uniform)
    assert result["class_coverage_entropy"] == pytest.approx(1.0)
    assert result["class_share_ratio"] == pytest.approx(1.0)
    assert result["confident_fraction"] == 1.0
    collapsed = gm.class_coverage(np.tile([0.85, 0.15] + [0.0] * 8, (20, 1)))
    assert collapsed["class_coverage_entropy"] == 0.0 and collapsed["class_share_ratio"] == math.inf
    assert collapsed["confident_fraction"] == 0.0
    assert collapsed["class_shares"][0] == 1.0


@needs["lenet5.mnist"]
@needs_mnist
def test_lenet5_features_separate_real_digits_from_noise():
    import zoo.data

    real = next(iter(zoo.data.load("mnist", "test", batch_size=400, data_dir=DATA_DIR)))["image"].numpy()
    extractor = gm.FeatureExtractor()
    feats, probs = extractor(real[:10])
    assert feats.shape == (10, 84) and probs.shape == (10, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    same = gm.sample_quality(real[:200], real[200:], extractor)
    noise = gm.sample_quality(np.random.default_rng(0).random((200, 28, 28, 1)), real[200:], extractor)
    assert same["fid_lenet5"] < noise["fid_lenet5"] / 5
    assert same["confident_fraction"] > 0.9 and same["class_coverage_entropy"] > 0.95
    with pytest.raises(InputError):
        extractor(real.astype("float32"))


# --- pictures and the CLI ------------------------------------------------------------------------


def test_image_grid_and_atomic_png(tmp_path):
    images = np.random.default_rng(0).random((5, 4, 3, 1))
    grid = generative.image_grid(images, cols=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 4 + 1) and grid.dtype == np.uint8
    assert generative.image_grid(images, scale=2).shape == (2 * (8 + 2) + 2, 3 * (6 + 2) + 2)
    path = generative.save_png(grid, tmp_path / "grid.png")
    assert np.array_equal(np.asarray(Image.open(path)), grid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(InputError):
        generative.save_png(grid, tmp_path / "missing" / "grid.png")
    with pytest.raises(InputError):
        generative.image_grid(np.zeros((2, 4, 4)))


@pytest.mark.parametrize("name", ["vae.mnist", "dcgan.mnist"])
def test_zoo_sample_writes_a_png(name, tmp_path):
    if name not in PACKAGED:
        pytest.skip(f"{name} is not packaged yet")
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(cli, ["sample", name, "--n", "16", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (4 * 58 + 2, 4 * 58 + 2)
        first = np.asarray(im)
    CliRunner().invoke(cli, ["sample", name, "--n", "16", "--seed", "1", "--out", str(out)])
    assert np.array_equal(np.asarray(Image.open(out)), first)  # seeded
    walk = tmp_path / "walk.png"
    result = CliRunner().invoke(
        cli,
        ["sample", name, "--interpolate", "--n", "12", "--steps", "6", "--scale", "1", "--out", str(walk)],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 2 latent walks of 6 images" in result.output
    assert Image.open(walk).size == (6 * 30 + 2, 2 * 30 + 2)
    one = tmp_path / "one.png"
    result = CliRunner().invoke(
        cli, ["sample", name, "--interpolate", "--n", "3", "--scale", "1", "--out", str(one)]
    )
    assert result.exit_code == 0 and "wrote 1 latent walk of 8 images" in result.output, result.output
    assert Image.open(one).size == (8 * 30 + 2, 30 + 2)  # at least one walk
    single = CliRunner().invoke(cli, ["sample", name, "--n", "1", "--out", str(tmp_path / "1.png")])
    assert single.exit_code == 0 and "wrote 1 sample to" in single.output, single.output
    args = ["sample", name, "--interpolate", "--n", "12", "--steps", "6", "--out", str(tmp_path / "j.png")]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["out"] == str(tmp_path / "j.png") and (summary["images"], summary["walks"]) == (12, 2)
    assert summary["weights"] == name  # the weights that drew them


def test_zoo_sample_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["sample", "lenet5", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "image-generation" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["sample", "dcgan", "--out", str(tmp_path / "no" / "x.png")])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = CliRunner().invoke(cli, ["sample", "dcgan", "--out", str(tmp_path / "x.jpg")])
    assert result.exit_code == 1 and ".png" in result.output
    assert CliRunner().invoke(cli, ["sample", "dcgan", "--n", "0", "--out", "x.png"]).exit_code == 2
    assert "Examples:" in CliRunner().invoke(cli, ["sample", "--help"]).output


# --- evaluation plumbing (tiny sizes; the full protocol runs in tools/train.py) -----------------


@needs["lenet5.mnist"]
@needs_mnist
@pytest.mark.parametrize("name", ["vae.mnist", "dcgan.mnist"])
def test_generation_metrics_on_a_small_subset(name, monkeypatch):
    if name not in PACKAGED:
        pytest.skip(f"{name} is not packaged yet")
    import zoo.tasks.evaluate as ev

    full = ev._images
    monkeypatch.setattr(ev, "_images", lambda n, split, d: full(n, split, d)[:300])
    entry = zoo.weights_entry(name)
    result = ev.generation_metrics(zoo.load(name), entry, num_samples=4, progress=False)
    assert result["num_examples"] == 300
    assert 0 < result["fid_lenet5_real_vs_real"] < result["fid_lenet5"]
    assert 0.5 < result["confident_fraction"] <= 1 and 0.8 < result["class_coverage_entropy"] <= 1
    if name.startswith("vae"):
        assert 60 < result["nll_nats"] < result["elbo_nats"] < 130
    else:
        assert "nll_nats" not in result
    recorded = {m.name for m in entry.metrics}
    assert recorded <= set(result)
    assert all(m.command == f"zoo evaluate {name}" for m in entry.metrics)


@pytest.mark.parametrize("name", ["vae.mnist", "dcgan.mnist"])
def test_verify_golden_for_generative_entries(name):
    if name not in PACKAGED:
        pytest.skip(f"{name} is not packaged yet")
    results = zoo.verify([name], golden=True)
    assert [r.status for r in results] == ["ok"] * len(results)
    assert any("golden outputs" in r.detail for r in results)
