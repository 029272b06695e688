"""The ``zoo`` command line: thin click commands that call the library and print.

Library errors (:class:`zoo.errors.ZooError`) become one line on stderr and exit
status 1; usage errors exit 2. TensorFlow is only imported by commands that run
models, so ``zoo list``, ``zoo info`` and ``zoo --help`` stay fast. Each module
here holds one group of commands.
"""

from zoo.cli import deploy, generation, inference, transfer, weights  # noqa: F401  (registers the commands)
from zoo.cli._app import cli, main

__all__ = ["cli", "main"]
