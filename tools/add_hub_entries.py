"""Record the pinned Hugging Face Hub entries of real ImageNet backbones in the manifest.

Usage:
    python tools/add_hub_entries.py            # write the records through upsert_entries
    python tools/add_hub_entries.py --print    # print them instead
    python tools/add_hub_entries.py --manifest PATH

The weights are torchvision's original ImageNet-1k weights as timm republished
them on the Hub (``timm/resnet50.tv_in1k``, ``timm/vgg16.tv_in1k``), in
safetensors with timm's module names. They load through the converters of
zoo/converters/torchvision.py. The files cannot be downloaded from this
project's machines, so their sha256 and size are not recorded: a download is
verified against the Hub's LFS sha256 at the pinned revision instead
(``sha256_source: "hub"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LABELS_FILE = ROOT / "zoo" / "pretrained" / "imagenet1k_labels.txt"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# (architecture, converter, Hub repo, pinned revision, parameters, torchvision top-1, weights enum,
#  the torchvision file timm converted, per timm's pretrained config)
HUB_MODELS = (
    (
        "resnet50",
        "torchvision_resnet",
        "timm/resnet50.tv_in1k",
        "aa6c2d36d56bc0209040c02b5a7b7d7bf11d57b8",
        25_557_032,
        76.13,
        "ResNet50_Weights.IMAGENET1K_V1",
        "resnet50-19c8e357.pth",
    ),
    (
        "vgg16",
        "torchvision_vgg",
        "timm/vgg16.tv_in1k",
        "3394518cba29aee1ea82a49d971be90d2dd1dab7",
        138_357_544,
        71.59,
        "VGG16_Weights.IMAGENET1K_V1",
        "vgg16-397923af.pth",
    ),
)


def imagenet_labels() -> list[str]:
    labels = LABELS_FILE.read_text(encoding="utf-8").splitlines()
    if len(labels) != 1000 or len(set(labels)) != 1000:
        raise SystemExit(f"{LABELS_FILE} must hold 1000 distinct class names")
    return labels


def imagenet_preprocessing() -> dict[str, Any]:
    """timm's pretrained_cfg of the tv_in1k weights: crop_pct 0.875 at 224, bilinear, ImageNet stats."""
    from zoo.preprocessing.specs import image_spec

    return image_spec(
        color_mode="rgb",
        resize=256,
        interpolation="bilinear",
        center_crop=[224, 224],
        scale=1 / 255,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def hub_record(
    arch: str,
    converter: str,
    repo_id: str,
    revision: str,
    num_params: int,
    top1: float,
    weights_enum: str,
    origin: str,
    labels: list[str],
) -> dict[str, Any]:
    from zoo.weights.records import make_record

    return make_record(
        architecture=arch,
        tag="tv_in1k",
        default=True,  # the default of this architecture only; the family default stays CIFAR
        description=(
            f"torchvision's original ImageNet-1k {arch} weights, as republished by timm "
            f"({repo_id}); timm's module names, converted when they load."
        ),
        files=[
            {
                "filename": "model.safetensors",
                "sha256": None,
                "size": None,
                "format": "safetensors",
                "sha256_source": "hub",
            }
        ],
        sources=[{"type": "hf", "repo_id": repo_id, "revision": revision}],
        converter=converter,
        builder_kwargs={},
        input_shape=[224, 224, 3],
        num_classes=1000,
        labels=labels,
        preprocessing=imagenet_preprocessing(),
        dataset={
            "name": "imagenet-1k",
            "split": "validation",
            "notes": "ILSVRC 2012; not available on this project's machines, nothing measured here",
        },
        metrics=[],
        references=[
            {
                "name": "top1_accuracy",
                "value": top1,
                "citation": f"torchvision model documentation, {weights_enum}",
                "note": (
                    f"reported by the source: torchvision's figure for {weights_enum}, its original "
                    f"ImageNet weights (timm converted the release file {origin}), at 224x224 after "
                    "a 256 resize; not measured here"
                ),
            }
        ],
        num_params=num_params,
        license="BSD-3-Clause",
        recipe={
            "command": "python tools/add_hub_entries.py",
            "notes": "third-party weights, not trained here: torchvision's training recipe "
            "(https://github.com/pytorch/vision/tree/main/references/classification)",
        },
        notes=(
            "The sha256 and size of model.safetensors are not recorded because the file cannot be "
            "downloaded from this project's machines; each download is verified against the "
            f"Hub's LFS sha256 at revision {revision}, and cached copies against the content hash "
            "their cache blob is named after. Preprocessing follows the repo's config.json "
            "(crop_pct 0.875, bilinear, ImageNet mean/std)."
        ),
    )


def records() -> dict[str, dict[str, Any]]:
    labels = imagenet_labels()
    return {f"{m[0]}.tv_in1k": hub_record(*m, labels=labels) for m in HUB_MODELS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the records, write nothing")
    parser.add_argument("--manifest", type=Path, help="manifest to update (default: the checkout's)")
    args = parser.parse_args()
    recs = records()
    if args.print:
        json.dump(recs, sys.stdout, indent=2)
        print()
        return 0
    from zoo.weights.manifest import upsert_entries

    upsert_entries(recs, args.manifest)
    for name in recs:
        print(f"recorded {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
