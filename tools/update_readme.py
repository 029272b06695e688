"""Regenerate the model table in README.md from the registry and the weights manifest.

Usage:
    python tools/update_readme.py          # rewrite the table
    python tools/update_readme.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import zoo
from zoo.weights.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- models:start -->", "<!-- models:end -->"


def _fmt_metric(entry) -> str:
    parts = []
    for m in entry.metrics:
        value = f"{m.value:.2f}%" if m.name.endswith(("accuracy", "error")) else f"{m.value:.4g}"
        parts.append(f"{m.name} {value} ({m.dataset} {m.split})")
    return "; ".join(parts) or "-"


def _fmt_reference(entry) -> str:
    return "; ".join(f"{r.name} {r.value:g} ({r.citation})" for r in entry.references) or "-"


def model_table() -> str:
    manifest = load_manifest()
    lines = [
        "| architecture | model | task | paper | pretrained weights (default first) |",
        "|---|---|---|---|---|",
    ]
    for name in zoo.list_models():
        info = zoo.info(name)
        weights = ", ".join(f"`{w.name}`" for w in info.weights) or "-"
        lines.append(
            f"| `{info.architecture}` | {info.display_name} | {info.task} "
            f"| [{info.paper.split(',')[0]}]({info.paper_url}) | {weights} |"
        )
    lines += [
        "",
        "| weights | params | size | measured here | published reference | reproduce |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted(manifest):
        e = manifest[name]
        size = "on the Hub" if e.total_size is None else f"{e.total_size / 1e6:.2f} MB"
        lines.append(
            f"| `{e.name}`{' (default)' if e.default else ''} | {e.num_params:,} | {size} "
            f"| {_fmt_metric(e)} | {_fmt_reference(e)} | `{e.recipe['command']}` |"
        )
    return "\n".join(lines)


def render(readme: str) -> str:
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md lacks the {START} ... {END} markers")
    return pattern.sub(lambda _: f"{START}\n{model_table()}\n{END}", readme)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    args = parser.parse_args()
    path = ROOT / "README.md"
    old = path.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("README.md model table is out of date: run python tools/update_readme.py")
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
