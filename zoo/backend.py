"""Which Keras backend the zoo will run on, read the way Keras reads it, without importing Keras."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["keras_backend"]


def keras_backend() -> str:
    """The backend: ``KERAS_BACKEND``, else ``backend`` in ``$KERAS_HOME/keras.json``, else tensorflow."""
    chosen = os.environ.get("KERAS_BACKEND", "").strip()
    if chosen:
        return chosen
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        config = json.loads((home / "keras.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "tensorflow"
    backend = config.get("backend") if isinstance(config, dict) else None
    return backend if isinstance(backend, str) and backend else "tensorflow"
