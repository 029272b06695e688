"""The model registry: architecture names, their builders and their metadata.

Each family file under ``zoo/models/`` decorates its builder functions with
:func:`register_model`. Names are matched forgivingly: case, ``-``, ``_``, ``.``
inside the architecture part and spaces do not matter, and a family name
(``"resnet"``) maps to that family's default architecture.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import UnknownModelError

TASKS = (
    "image-classification",
    "text-classification",
    "language-modeling",
    "text-embedding",
    "image-generation",
)


@dataclass(frozen=True)
class ModelSpec:
    """Static description of one registered architecture.

    Attributes:
        name: Canonical architecture name, e.g. ``"resnet50"``.
        builder: Pure function ``(**kwargs) -> keras.Model`` (or model-like object).
        family: Family name, e.g. ``"resnet"``.
        display_name: Human name, e.g. ``"ResNet-50"``.
        paper: Short citation, e.g. ``"He et al. 2015"``.
        paper_url: Link to the paper.
        task: One of :data:`TASKS`.
        family_default: Whether a bare family name resolves to this architecture.
        aliases: Extra names that resolve to this architecture.
        description: One line on what the variant is.
    """

    name: str
    builder: Callable[..., Any] = field(repr=False, compare=False)
    family: str
    display_name: str
    paper: str
    paper_url: str
    task: str
    family_default: bool = False
    aliases: tuple[str, ...] = ()
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def normalize(name: str) -> str:
    """Return the forgiving lookup key of a name: lower case without ``-``, ``_`` or spaces."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def register_model(
    *,
    family: str,
    display_name: str,
    paper: str,
    paper_url: str,
    task: str,
    family_default: bool = False,
    aliases: tuple[str, ...] = (),
    description: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a builder function under its own ``__name__``.

    Args:
        family: Family the architecture belongs to (``"resnet"``).
        display_name: Human-readable name (``"ResNet-50"``).
        paper: Short citation (``"He et al. 2015"``).
        paper_url: Link to the paper.
        task: One of :data:`TASKS`.
        family_default: Make a bare family name resolve to this architecture.
        aliases: Extra names for this architecture.
        description: One line describing the variant.

    Returns:
        A decorator that records the builder and returns it unchanged.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        if family_default and any(s.family == family and s.family_default for s in _REGISTRY.values()):
            raise ValueError(f"family {family!r} has two defaults")
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=fn,
            family=family,
            display_name=display_name,
            paper=paper,
            paper_url=paper_url,
            task=task,
            family_default=family_default,
            aliases=tuple(aliases),
            description=description,
        )
        return fn

    return decorator


def registry() -> dict[str, ModelSpec]:
    """Return every registered architecture, keyed by canonical name."""
    return dict(_REGISTRY)


def _lookup_table() -> dict[str, str]:
    """Map every normalized name, alias and family name to a canonical architecture."""
    table: dict[str, str] = {}
    specs = registry()
    for spec in specs.values():
        if spec.family_default:
            table[normalize(spec.family)] = spec.name
    for spec in specs.values():
        for key in (spec.name, spec.display_name, *spec.aliases):
            taken = table.get(normalize(key))
            if taken is not None and taken != spec.name:
                raise ValueError(f"name {key!r} of {spec.name!r} is already taken by {taken!r}")
            table[normalize(key)] = spec.name
    return table


def split_name(name: str) -> tuple[str, str | None]:
    """Split ``"arch.tag"`` into its two parts; the tag is ``None`` when absent."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError("model name must be a non-empty string, e.g. 'lenet5' or 'lenet5.mnist'")
    arch, sep, tag = name.strip().partition(".")
    return arch, (tag.strip() if sep else None)


def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``name``."""
    by_key = {normalize(c): c for c in candidates}
    close = difflib.get_close_matches(normalize(name), list(by_key), n=n, cutoff=0.5)
    return [by_key[k] for k in close]


#: The file that makes a folder a fine-tuned zoo model (written last by ``zoo finetune``).
MODEL_CARD = "card.json"


def get_spec(name: str) -> ModelSpec:
    """Return the spec of an architecture, family or alias name (a ``.tag`` part is ignored).

    Raises:
        UnknownModelError: When nothing matches; the message lists close matches.
    """
    arch, _ = split_name(name)
    table = _lookup_table()
    key = normalize(arch)
    if key in table:
        return registry()[table[key]]
    options = sorted(registry()) + sorted({s.family for s in registry().values()})
    close = suggest(arch, options)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    if os.path.isfile(os.path.join(name, MODEL_CARD)):  # a bare word is always a zoo name
        hint = f" A fine-tuned model folder {name!r} is here: name it as a path, ./{name}."
    elif "/" in name or os.sep in name or name.startswith((".", "~")):  # meant as a path
        path = os.path.expanduser(name)
        if not os.path.exists(path):
            hint = f" No folder {name} exists either (a fine-tuned model is a folder zoo finetune wrote)."
        elif os.path.isfile(path):
            hint = f" {name} is a file, not a fine-tuned model folder."
        else:
            hint = f" {name} is not a fine-tuned model folder (it has no {MODEL_CARD})."
    raise UnknownModelError(f"unknown model {name!r}.{hint} Run 'zoo list' to see every model.", close)


def list_architectures(pattern: str | None = None, *, task: str | None = None) -> list[ModelSpec]:
    """Return registered architectures whose name matches an fnmatch ``pattern`` and ``task``."""
    specs = sorted(registry().values(), key=lambda s: s.name)
    if pattern:
        pat = pattern.lower()
        specs = [s for s in specs if fnmatch.fnmatch(s.name, pat) or fnmatch.fnmatch(s.family, pat)]
    if task:
        if task not in TASKS:
            raise UnknownModelError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        specs = [s for s in specs if s.task == task]
    return specs
