"""Public face of ``zoo finetune`` as a library call (``zoo.finetune.finetune``).

The code lives in :mod:`zoo.train.finetune`; this module only re-exports it.
"""

from zoo.train.engine import fine_tune_text
from zoo.train.finetune import DISTRIBUTE, check_settings, finetune, finetune_text, get_strategy

__all__ = ["DISTRIBUTE", "check_settings", "fine_tune_text", "finetune", "finetune_text", "get_strategy"]
