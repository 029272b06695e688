"""The ``zoo`` click group, its error handling and the output helpers its commands share.

Library errors (:class:`zoo.errors.ZooError`) become one line on stderr and exit
status 1; usage errors exit 2. TensorFlow is only imported when a command first
needs it, so listings, help and refusals stay fast.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.abc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from zoo.backend import keras_backend
from zoo.errors import ZooError, ZooWarning

#: Where :func:`echo_json` writes while a ``--json`` command runs (stdout itself then goes to stderr).
_JSON_STDOUT: contextvars.ContextVar[Any] = contextvars.ContextVar("zoo_json_stdout", default=None)


class ZooCommand(click.Command):
    """A command whose ``--json`` output is all that reaches stdout.

    While a command given ``--json`` runs, what libraries print to stdout (a dataset
    builder's progress line, for one) goes to stderr, so the JSON can be piped as it is.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, with stdout kept for its JSON when ``--json`` was given."""
        if not ctx.params.get("as_json"):
            return super().invoke(ctx)
        token = _JSON_STDOUT.set(sys.stdout)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return super().invoke(ctx)
        finally:
            _JSON_STDOUT.reset(token)


class ZooGroup(click.Group):
    """A click group that turns library errors into one clear line and exit status 1."""

    command_class = ZooCommand

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, reporting :class:`ZooError` without a traceback."""
        try:
            with one_line_warnings():
                return super().invoke(ctx)
        except ZooError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show each :class:`~zoo.errors.ZooWarning` once, as one ``Warning: ...`` line on stderr.

    Other warnings keep Python's own display.
    """
    import warnings

    shown: set[str] = set()
    default = warnings.showwarning

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        if not issubclass(category, ZooWarning):
            default(message, category, *args, **kwargs)
        elif str(message) not in shown:
            shown.add(str(message))
            click.echo(f"Warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ZooWarning)  # repeats are dropped above, by their text
        warnings.showwarning = show
        yield


RUNTIMES = ("keras", "onnx")


def runtime_option(note: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--runtime keras|onnx`` option of the commands that run classifiers."""
    return click.option(
        "--runtime",
        type=click.Choice(RUNTIMES),
        default="keras",
        show_default=True,
        help="Classifiers: run on Keras, or on ONNX Runtime (exported once into the zoo's cache, "
        f"checked against Keras within 1e-4){note}.",
    )


def columns_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--text-column`` and ``--label-column`` options of the commands that read labelled text."""
    for flag, default, what in (("--label-column", "label", "label"), ("--text-column", "text", "text")):
        command = click.option(
            flag,
            default=default,
            show_default=True,
            help=f"CSV/TSV/JSONL data: the column holding the {what}.",
        )(command)
    return command


def echo_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (the real one, inside a ``--json`` command)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str), file=_JSON_STDOUT.get())


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def fit_items(items: list[str], width: int) -> str:
    """``items`` joined by commas, cut to those that fit in ``width`` characters and ``(+N more)``.

    At least one item is always kept, however long.
    """
    text = ", ".join(items)
    if len(text) <= width:
        return text
    for keep in range(len(items) - 1, 0, -1):
        cut = f"{', '.join(items[:keep])}, (+{len(items) - keep} more)"
        if len(cut) <= width:
            return cut
    return f"{items[0]}, (+{len(items) - 1} more)"


def terminal_columns() -> int | None:
    """The terminal's width when stdout is one, else ``None`` (piped output is never cut)."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


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
@click.version_option(
    package_name="keras-zoo",
    prog_name="zoo",
    message=f"%(prog)s %(version)s (Keras backend: {keras_backend()})",
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """A Keras 3 model zoo: classic architectures with verified pretrained weights."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        quiet_tensorflow_start()


def quiet_tensorflow_start() -> None:
    """Have TensorFlow, whenever a command first imports it, start with its C++ log lines off the terminal.

    Afterwards its C++ log reports fatal errors only (level 3: a kernel's "ERROR" notice about a
    fallback, such as oneDNN's DT_BOOL one during an LSTM's ONNX export, is not the user's
    failure; a real failure raises, and the command reports it) and its Python logger errors
    only. Only when the user has not chosen a level with ``TF_CPP_MIN_LOG_LEVEL``. The start-up
    lines (oneDNN, CUDA probing) are written before TensorFlow reads any setting, so the only way
    to keep them quiet is to point file descriptor 2 elsewhere while it starts. Nothing is
    imported here: help, listings and refusals stay fast, and a command that never needs
    TensorFlow never loads it.
    """
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # TensorFlow's Python warnings (SavedModel serialisation notes, retracing) are not the user's
    # business; TF_CPP_MIN_LOG_LEVEL set by the user keeps them all.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietStart) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietStart())


@contextlib.contextmanager
def _stderr_off() -> Iterator[None]:
    """File descriptor 2 pointed at the null device (nothing to do without a real one)."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (embedded): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr.flush()
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _QuietStart(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``tensorflow`` the first time it is imported and runs its start with stderr off."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:  # the finder that would find it; found only to look is not imported
            spec = (
                None
                if finder is self
                else getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
            )
            if spec is not None and spec.loader is not None:
                self.loader, spec.loader = spec.loader, self
                return spec
        return None

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        if self in sys.meta_path:  # once: later imports find it in sys.modules
            sys.meta_path.remove(self)
        module.__loader__ = module.__spec__.loader = self.loader
        with _stderr_off():
            self.loader.exec_module(module)
            module.config.list_physical_devices("GPU")  # the CUDA probe logs here
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def main() -> None:
    """Entry point of the ``zoo`` console script."""
    cli(prog_name="zoo")
