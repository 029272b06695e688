"""Public face of ``zoo finetune`` as a library call (``zoo.finetune.finetune``).

The code lives in :mod:`zoo.train.finetune`; this module only re-exports it.
"""

from zoo.train.distribute import DISTRIBUTE, distribution_scope
from zoo.train.engine import fine_tune_text
from zoo.train.finetune import check_settings, finetune, finetune_text

__all__ = [
    "DISTRIBUTE",
    "check_settings",
    "distribution_scope",
    "fine_tune_text",
    "finetune",
    "finetune_text",
]
