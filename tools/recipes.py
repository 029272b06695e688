"""Training recipes of the weights this project trains itself, as plain data.

``python tools/train.py NAME`` runs ``RECIPES[NAME]``; the manifest records the
command and the measured metrics. ``kind`` selects the trainer: ``"classifier"``
(the default), ``"vae"`` or ``"dcgan"``.
"""

from __future__ import annotations

MNIST_LABELS = [str(i) for i in range(10)]
MNIST_NOTES = "MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0), 60k train / 10k test"
GREY_28 = {"type": "image", "color_mode": "grayscale", "resize": None, "interpolation": "bilinear",
           "center_crop": None, "pad_to": None}
FID_PROTOCOL = (
    "fid_lenet5: Frechet distance between Gaussians fitted to the 84-d pre_logits features of this "
    "zoo's lenet5.mnist (its own preprocessing) for 10,000 generated images (latent seed 0, "
    "rounded to 8-bit grey) and the 10,000 MNIST test images; not comparable with Inception FIDs. "
    "fid_lenet5_real_vs_real is the same distance between the first 10,000 MNIST training images "
    "and the test images (the floor). confident_fraction: share of the generated images whose "
    "lenet5.mnist softmax maximum is >= 0.9. class_coverage_entropy: entropy of the histogram of "
    "lenet5.mnist's predicted classes over the generated images / log(10) (1 = uniform); "
    "class_share_ratio: largest class share / smallest. Protocol code: zoo.generative_metrics, "
    "constants in zoo.evaluate."
)

RECIPES: dict[str, dict] = {
    "lenet5.mnist": {
        "architecture": "lenet5",
        "builder_kwargs": {},
        "dataset": "mnist",
        "eval_split": "test",
        "labels": MNIST_LABELS,
        "input_shape": [32, 32, 1],
        "preprocessing": {
            "type": "image", "color_mode": "grayscale", "resize": [28, 28], "interpolation": "bilinear",
            "center_crop": None, "pad_to": [32, 32], "scale": 1 / 255, "mean": None, "std": None,
        },
        "augment": {"random_shift": 2},
        "epochs": 30,
        "batch_size": 128,
        "optimizer": {"name": "adamw", "max_lr": 3e-3, "weight_decay": 1e-4},
        "seed": 0,
        "description": "LeNet-5 (tanh, average pooling, dense C3) trained on MNIST with +-2 px shifts.",
        "license": "Apache-2.0",
        "dataset_notes": "MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0), 60k train / 10k test",
        "references": [
            {"name": "top1_error", "value": 0.95,
             "citation": "LeCun et al. 1998, LeNet-5 without distortions"},
            {"name": "top1_error", "value": 0.8,
             "citation": "LeCun et al. 1998, LeNet-5 with distortions"},
        ],
        "primary_metric": ("top1_error", False),
    },
    "vae.mnist": {
        "kind": "vae",
        "architecture": "vae",
        "builder_kwargs": {"latent_dim": 32, "units": 512, "filters": 32, "blocks": 1, "bottleneck": 16},
        "dataset": "mnist",
        "eval_split": "test",
        "labels": None,
        "input_shape": [28, 28, 1],
        "preprocessing": {**GREY_28, "scale": 1 / 255, "mean": None, "std": None},
        "augment": None,
        "dynamic_binarization": True,
        "kl_warmup_epochs": 5,
        "epochs": 50,
        "batch_size": 128,
        "optimizer": {"name": "adam", "max_lr": 1e-3, "pct_start": 0.02},
        "seed": 0,
        "description": (
            "Residual convolutional VAE (32-d Gaussian latent, Bernoulli decoder) trained on "
            "dynamically binarised MNIST."
        ),
        "license": "Apache-2.0",
        "dataset_notes": (
            MNIST_NOTES + ". Training: every step binarises the batch afresh (pixel p -> "
            "Bernoulli(p), dynamic binarisation). Evaluation: the test images x/255 binarised once "
            "with numpy.random.default_rng(0).random(shape) < x/255 (fixed, seed 0)."
        ),
        "notes": (
            "nll_nats: test negative log-likelihood in nats per image, estimated by importance "
            "sampling with k=1000 samples from the encoder's q(z|x) per test image (Burda et al. "
            "2016; log-mean-exp of log p(x|z) + log p(z) - log q(z|x) in float64, latent noise "
            "seed 0) on all 10,000 fixed-binarised test images; elbo_nats: the negative ELBO "
            "averaged over the same samples. Samples for the sample-quality metrics are the "
            "decoder's pixel means for latent vectors drawn from the prior. " + FID_PROTOCOL
        ),
        "references": [
            {"name": "nll_nats", "value": 86.76,
             "citation": "Burda et al. 2016, Importance Weighted Autoencoders, Table 1",
             "note": "VAE with one stochastic layer (MLP), k=1, NLL by importance sampling with k=5000"},
        ],
        "metric_names": [
            "nll_nats", "elbo_nats", "fid_lenet5", "fid_lenet5_real_vs_real", "confident_fraction",
            "class_coverage_entropy", "class_share_ratio",
        ],
        "golden_atol": 1e-3,
    },
    "dcgan.mnist": {
        "kind": "dcgan",
        "architecture": "dcgan",
        "builder_kwargs": {"latent_dim": 100, "image_size": 28, "channels": 1, "filters": 32},
        "dataset": "mnist",
        "eval_split": "test",
        "labels": None,
        "input_shape": [100],
        "preprocessing": {**GREY_28, "scale": 2 / 255, "mean": [1.0], "std": None},
        "augment": None,
        "epochs": 20,
        "batch_size": 128,
        "optimizer": {"name": "adam", "lr": 2e-4, "beta_1": 0.5},
        "seed": 0,
        "description": (
            "DCGAN (5x5 transposed convolutions, batch norm, 100-d latent) trained on MNIST; "
            "generates 28x28 digits."
        ),
        "license": "Apache-2.0",
        "dataset_notes": MNIST_NOTES + ". Training images scaled to [-1, 1] (x * 2/255 - 1).",
        "notes": (
            "The model's call maps latent vectors (100-d standard normal) to images in [-1, 1]; "
            "generate(n, seed) returns images in [0, 1]. " + FID_PROTOCOL
        ),
        "references": [],
        "metric_names": [
            "fid_lenet5", "fid_lenet5_real_vs_real", "confident_fraction", "class_coverage_entropy",
            "class_share_ratio",
        ],
        "golden_atol": 1e-4,
    },
}
