"""Typed errors raised by the zoo library.

Every error carries a message that says what went wrong and what to do next; the
CLI prints ``str(error)`` as one line and exits non-zero.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class of every error the zoo raises on purpose."""

    exit_code = 1


class ZooWarning(UserWarning):
    """Base class of the zoo's warnings: something was skipped or not done, and the work went on.

    The CLI prints each one once, as one ``Warning:`` line on stderr.
    """


class UnknownModelError(ZooError, KeyError):
    """A model, family or weights name that the registry does not know."""

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = list(suggestions or [])

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class NoPretrainedWeightsError(ZooError):
    """The architecture has no weights entry matching the request."""


class ManifestError(ZooError):
    """The weights manifest is malformed or inconsistent."""


class WeightsVerificationError(ZooError):
    """A weights file failed its sha256 or size check and could not be repaired."""


class WeightsNotFoundError(ZooError):
    """No copy of a weights file could be found or downloaded."""


class OfflineError(WeightsNotFoundError):
    """Offline mode (or no network) with the weights not in any local cache."""


class WeightsFormatError(ZooError):
    """A weights file is in a format the zoo refuses (for example pickle) or does not fit the model."""


class DataError(ZooError):
    """A dataset could not be found, read or understood."""


class InputError(ZooError):
    """Bad user input to a model: wrong shape, unreadable image, empty text."""


class TrainingError(ZooError):
    """Training failed, for example its loss became NaN or infinite; nothing was written as a result."""


def check_finite_history(history: dict, where: str = "training") -> None:
    """Raise :class:`TrainingError` when a Keras history holds a non-finite loss."""
    import math

    for key, values in history.items():
        if not key.endswith("loss"):
            continue
        for epoch, value in enumerate(values if isinstance(values, list | tuple) else [values], 1):
            if not math.isfinite(float(value)):
                raise TrainingError(
                    f"{where} diverged: {key} became {float(value)} in epoch {epoch}; lower the "
                    "learning rate (--lr) and run again (nothing was saved as a result)"
                )


class MissingDependencyError(ZooError, ImportError):
    """An optional package this path needs is not installed (the message gives the pip command)."""


#: The distribution that installs ``import zoo`` (the name ``zoo`` on PyPI belongs to another project).
DISTRIBUTION = "keras-zoo"


def install_command(extra: str, fallback: tuple[str, ...] = ()) -> str:
    """The pip command that installs an optional extra's packages into this environment.

    The command names the packages themselves, with the versions this install asks for, so it
    works however the zoo was installed (from the index, a wheel or a source checkout).

    Args:
        extra: The extra's name in ``pyproject.toml`` (``"export"``, ``"tfds"``, ``"plots"``).
        fallback: Packages to name when the installed metadata cannot be read.
    """
    import re
    from importlib import metadata

    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        requirements = []
    wanted = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", marker):
            wanted.append(spec.strip().replace(" ", ""))
    packages = wanted or list(fallback)
    return "pip install " + " ".join(f"'{p}'" for p in packages)


def missing_dependency(what: str, extra: str, fallback: tuple[str, ...]) -> MissingDependencyError:
    """A :class:`MissingDependencyError` saying what needs the extra and how to install it."""
    return MissingDependencyError(f"{what} needs {', '.join(fallback)}: {install_command(extra, fallback)}")
