"""Commands of the generative models: sample (images) and generate (text)."""

from __future__ import annotations

import click

from zoo.cli._app import cli, echo_json


@cli.command("sample")
@click.argument("name")
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="PNG file to write (a new file; see --overwrite).",
)
@click.option(
    "--n",
    "-n",
    "n",
    default=64,
    show_default=True,
    type=click.IntRange(1, 4096),
    help="Number of images (with --interpolate: n // steps walks).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the latent vectors.")
@click.option("--interpolate", is_flag=True, help="One latent walk per row, from seed+2r to seed+2r+1.")
@click.option(
    "--steps",
    default=8,
    show_default=True,
    type=click.IntRange(2, 64),
    help="Images per walk with --interpolate.",
)
@click.option(
    "--scale",
    default=2,
    show_default=True,
    type=click.IntRange(1, 8),
    help="Upscale each image by this integer factor.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace zoo's own earlier output at --out (never files zoo did not write).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the file and what it holds.")
def sample_cmd(
    name: str,
    out: str,
    n: int,
    seed: int,
    interpolate: bool,
    steps: int,
    scale: int,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Draw images from a pretrained generative model and save them as a PNG grid.

    \b
    Examples:
      zoo sample dcgan --out digits.png
      zoo sample vae.mnist --n 100 --seed 3 --out vae.png
      zoo sample dcgan --interpolate --n 64 --out walks.png   (8 walks of 8 steps)
      zoo sample vae --n 16 --out four-by-four.png --json
    """
    from zoo.tasks.generate import sample_png

    path = sample_png(
        name, out, n=n, seed=seed, interpolate=interpolate, steps=steps, scale=scale, overwrite=overwrite
    )
    walks = max(1, n // steps)
    if as_json:
        images = walks * steps if interpolate else n
        from zoo import api

        weights = api.weights_entry(name).name
        summary = {"weights": weights, "out": str(path), "images": images, "seed": seed, "scale": scale}
        echo_json({**summary, "walks": walks if interpolate else None})
        return
    what = (
        f"{walks} latent walk{'s' * (walks > 1)} of {steps} images"
        if interpolate
        else f"{n} sample{'s' * (n > 1)}"
    )
    click.echo(f"wrote {what} to {path}")


@cli.command("generate")
@click.argument("name")
@click.option("--prompt", "-p", required=True, help="Text to continue (in the model's vocabulary).")
@click.option(
    "--n-chars",
    "-n",
    "n_chars",
    default=500,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Number of characters to generate.",
)
@click.option(
    "--temperature",
    "-t",
    default=0.8,
    show_default=True,
    type=click.FloatRange(0),
    help="Softmax temperature; 0 is greedy.",
)
@click.option("--top-k", type=click.IntRange(1), help="Sample among the k most likely characters only.")
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of plain text.")
def generate_cmd(
    name: str, prompt: str, n_chars: int, temperature: float, top_k: int | None, seed: int, as_json: bool
) -> None:
    """Continue a prompt with a pretrained character language model.

    \b
    Examples:
      zoo generate lstm --prompt "ROMEO:" --n-chars 300
      zoo generate lstm_charlm.shakespeare -p "First Citizen:" -t 0.5 --seed 7 --json
    """
    from zoo.tasks.language_model import generate_text

    text = generate_text(name, prompt, n_chars, temperature=temperature, seed=seed, top_k=top_k)
    if as_json:
        from zoo import api

        echo_json(
            {
                "weights": api.weights_entry(name).name,
                "prompt": prompt,
                "text": text,
                "temperature": temperature,
                "seed": seed,
                "top_k": top_k,
            }
        )
        return
    click.echo(prompt + text)
