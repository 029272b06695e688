"""zoo: a Keras 3 model zoo with verified pretrained weights.

Importing ``zoo`` does not import TensorFlow or Keras; they load on first use.

Example:
    >>> import zoo
    >>> model = zoo.load("lenet5")          # packaged, verified MNIST weights
    >>> zoo.list_models("resnet*")
"""

from zoo._register import register_when_keras_loads
from zoo.api import (
    ModelInfo,
    VerifyResult,
    build,
    info,
    list_models,
    list_weights,
    load,
    load_keras,
    pull,
    verify,
    weights_entry,
)
from zoo.errors import (
    DataError,
    InputError,
    ManifestError,
    NoPretrainedWeightsError,
    OfflineError,
    UnknownModelError,
    WeightsFormatError,
    WeightsNotFoundError,
    WeightsVerificationError,
    ZooError,
    ZooWarning,
)

__version__ = "0.1.0"

register_when_keras_loads()  # keras.saving.load_model then knows the zoo's layers

__all__ = [
    "DataError",
    "InputError",
    "ManifestError",
    "ModelInfo",
    "NoPretrainedWeightsError",
    "OfflineError",
    "UnknownModelError",
    "VerifyResult",
    "WeightsFormatError",
    "WeightsNotFoundError",
    "WeightsVerificationError",
    "ZooError",
    "ZooWarning",
    "build",
    "info",
    "list_models",
    "list_weights",
    "load",
    "load_keras",
    "pull",
    "verify",
    "weights_entry",
]
