"""Model families: one module per family, each registering its builders with ``zoo.registry``."""
