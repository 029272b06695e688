"""Public face of the transfer-learning tools (``from zoo.transfer import fine_tune``).

The code lives in :mod:`zoo.train.engine` (feature extraction, the fine-tuning
engine) and :mod:`zoo.weights.adapt` (weight transfer); this module only re-exports it.
"""

from zoo.train.engine import (
    backbone_blocks,
    default_feature_layers,
    extract_features,
    extract_to_file,
    feature_cache_dir,
    feature_extractor,
    fine_tune,
    split_backbone,
    weights_fingerprint,
)
from zoo.weights.adapt import adapt_input_kernel, transfer_weights

__all__ = [
    "adapt_input_kernel",
    "backbone_blocks",
    "default_feature_layers",
    "extract_features",
    "extract_to_file",
    "feature_cache_dir",
    "feature_extractor",
    "fine_tune",
    "split_backbone",
    "transfer_weights",
    "weights_fingerprint",
]
