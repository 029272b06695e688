"""The ``zoo`` click group, its error handling and the output helpers its commands share.

Library errors (:class:`zoo.errors.ZooError`) become one line on stderr and exit
status 1; usage errors exit 2. TensorFlow is only imported by commands that run
models, so ``zoo list``, ``zoo info`` and ``zoo --help`` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from zoo.errors import ZooError


class ZooGroup(click.Group):
    """A click group that turns library errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, reporting :class:`ZooError` without a traceback."""
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@click.group(
    cls=ZooGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  zoo list                      every architecture
  zoo list 'resnet*' --json     wildcard, as JSON
  zoo info lenet5               metadata and weights of LeNet-5
  zoo pull lenet5.mnist         fetch and verify weights
  zoo verify                    re-hash packaged and cached weights""",
)
@click.version_option(package_name="zoo", prog_name="zoo")
def cli() -> None:
    """A Keras 3 model zoo: classic architectures with verified pretrained weights."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    """Entry point of the ``zoo`` console script."""
    cli(prog_name="zoo")
