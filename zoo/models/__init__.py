"""Model families: one module per family, each registering its builders with ``zoo.registry``."""

import importlib
import pkgutil

# Every family module registers its builders when imported; the loader imports this package.
for _family in pkgutil.iter_modules(__path__):
    if not _family.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_family.name}")
