"""Draw images from the zoo's generative models and lay them out as PNG grids.

One interface over both families: :func:`generate` calls ``VAE.sample`` (decoder
means of latent vectors drawn from the prior) or ``DCGAN.generate``;
:func:`interpolations` walks between the latent vectors of pairs of seeds;
:func:`image_grid` and :func:`save_png` turn a batch into a picture a person
can look at. ``zoo sample`` is a thin wrapper over :func:`sample_png`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import InputError


def _kind(model: Any) -> str:
    if hasattr(model, "generate") and hasattr(model, "generator"):
        return "dcgan"
    if hasattr(model, "sample") and hasattr(model, "decoder"):
        return "vae"
    raise InputError(
        f"{getattr(model, 'name', type(model).__name__)} is not a generative model; "
        "zoo sample works on the image-generation models (vae, dcgan)"
    )


def generate(model: Any, n: int, seed: int | None = 0) -> np.ndarray:
    """Return ``n`` generated images ``(n, H, W, C)`` with values in ``[0, 1]``.

    Args:
        model: A zoo VAE (decoder means of prior samples) or DCGAN.
        n: Number of images.
        seed: Seed of the latent vectors; the same seed gives the same images.
    """
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if _kind(model) == "dcgan":
        return model.generate(n, seed=seed)
    return model.sample(n, seed=seed)


def interpolations(model: Any, rows: int, steps: int = 8, seed: int = 0) -> np.ndarray:
    """Return ``rows`` latent walks of ``steps`` images each, row after row.

    Row ``r`` goes from the latent vector of seed ``seed + 2r`` to that of seed
    ``seed + 2r + 1`` (the vectors ``generate(model, 1, s)`` decodes), so its ends
    are reproducible single samples.

    Args:
        model: A zoo VAE or DCGAN.
        rows: Number of walks.
        steps: Images per walk, both ends included (at least 2).
        seed: Seed of the first walk's start.

    Returns:
        A float32 array ``(rows * steps, H, W, C)`` with values in ``[0, 1]``.
    """
    _kind(model)
    if rows < 1 or steps < 2:
        raise InputError(f"need rows >= 1 and steps >= 2, got rows={rows}, steps={steps}")
    walks = [model.interpolate(seed + 2 * r, seed + 2 * r + 1, steps) for r in range(rows)]
    return np.concatenate(walks)


def image_grid(images: Any, cols: int | None = None, *, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile images into one uint8 picture.

    Args:
        images: ``(n, H, W, C)`` floats in ``[0, 1]`` with ``C`` 1 or 3.
        cols: Images per row (default: a square-ish grid).
        pad: Pixels of black border between images.
        scale: Integer upscaling factor (nearest neighbour), for small images.

    Returns:
        A uint8 array ``(rows*(H+pad)+pad, cols*(W+pad)+pad)``, with a trailing
        channel axis for colour images.
    """
    x = np.asarray(images, dtype="float32")
    if x.ndim != 4 or x.shape[0] == 0 or x.shape[-1] not in (1, 3):
        raise InputError(f"expected images (n, H, W, 1 or 3), got shape {x.shape}")
    if scale > 1:
        x = x.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, c = x.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype="uint8")
    pixels = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype("uint8")
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid[..., 0] if c == 1 else grid


def save_png(picture: np.ndarray, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a uint8 picture as a PNG atomically (see :mod:`zoo.outputs` for the rules).

    Args:
        picture: ``(H, W)`` or ``(H, W, 3)`` uint8 array.
        path: The PNG file; its folder must exist.
        overwrite: Replace a PNG that zoo wrote there earlier (never any other file).

    Returns:
        The path written.
    """
    from PIL import Image

    from zoo import outputs

    with outputs.output_file(path, overwrite=overwrite, command="zoo sample") as tmp:
        with open(tmp, "wb") as fh:
            Image.fromarray(picture).save(fh, format="PNG")
    return Path(path)


def sample_png(
    name: str,
    out: str | os.PathLike[str],
    *,
    n: int = 64,
    seed: int = 0,
    interpolate: bool = False,
    steps: int = 8,
    scale: int = 2,
    overwrite: bool = False,
) -> Path:
    """Load a pretrained generative model and write a PNG grid of its samples.

    Args:
        name: Weights or architecture name (``"dcgan"``, ``"vae.mnist"``).
        out: Path of the PNG to write.
        n: Number of images; with ``interpolate``, ``n // steps`` walks (at least one).
        seed: Seed of the latent vectors.
        interpolate: Draw latent walks (see :func:`interpolations`), one per row.
        steps: Images per walk.
        scale: Integer upscaling of each image.
        overwrite: Replace a PNG that zoo wrote at ``out`` earlier (never any other file).

    Returns:
        The path written.
    """
    from zoo import outputs, registry
    from zoo.api import load, weights_entry

    spec = registry.get_spec(weights_entry(name).architecture)
    if spec.task != "image-generation":
        generative = ", ".join(s.name for s in registry.list_architectures(task="image-generation"))
        raise InputError(
            f"{name} is an {spec.task} model; zoo sample works on image-generation models ({generative})"
        )
    if not out or Path(out).suffix.lower() != ".png":
        raise InputError(f"output file must end in .png, got {str(out)!r}")
    outputs.check_file_target(out, overwrite)  # before any work
    model = load(weights_entry(name).name)
    if interpolate:
        images = interpolations(model, max(1, n // steps), steps, seed)
        picture = image_grid(images, cols=steps, scale=scale)
    else:
        picture = image_grid(generate(model, n, seed), scale=scale)
    return save_png(picture, out, overwrite=overwrite)
