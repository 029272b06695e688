"""Public face of the character language model tools (``zoo.charlm.generate``).

The code lives in :mod:`zoo.tasks.language_model`; this module only re-exports it.
"""

from zoo.tasks.language_model import *  # noqa: F403
from zoo.tasks.language_model import __all__, generate  # noqa: F401
