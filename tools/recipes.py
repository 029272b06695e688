"""Training recipes of the weights this project trains itself, as plain data.

``python tools/train.py NAME`` runs ``RECIPES[NAME]``; the manifest records the
command and the measured metric.
"""

from __future__ import annotations

MNIST_LABELS = [str(i) for i in range(10)]

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
}
