"""Datasets for the zoo: the same fast ``tf.data`` pipelines for tools, the CLI and users.

Quick start::

    import zoo.data

    train = zoo.data.load("cifar10", "train", batch_size=128, shuffle=True,
                          augment="cifar", preprocessing=spec)
    zoo.data.info("mnist").splits          # {'train': 60000, 'test': 10000}
    zoo.data.load("tfds:glue/sst2:validation")
    zoo.data.load("path/to/folder", "test")  # root/<split>/<label>/*.png
    zoo.data.load("mnist", "test[:1000]")    # a slice, in tensorflow-datasets' syntax
    mr_train, mr_test = zoo.data.kfold("mr", k=10, fold=3)

Named datasets (``list_datasets()``): ``mnist``, ``fashion_mnist``, ``cifar10``,
``tiny_shakespeare``, ``mr``. They are read from the data directory
(``data_dir=`` or the ``ZOO_DATA_DIR`` environment variable; files checked once
per process against its ``SHA256SUMS``) and otherwise from tensorflow-datasets
with identical element specs. See :mod:`zoo.data.pipeline` for the element
convention, :mod:`zoo.preprocessing` for preprocessing specs and
:mod:`zoo.data.folders` for user data layouts and warnings.

Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from zoo.data._paths import DATA_DIR_ENV, resolve_data_dir
from zoo.data.augment import (
    cifar_augment,
    cifar_cutout_augment,
    random_crop_with_padding,
    random_cutout,
    random_flip_left_right,
)
from zoo.data.catalog import DatasetInfo, list_datasets
from zoo.data.folders import DataWarning
from zoo.data.pipeline import fit_spec, info, kfold, load, split_slice, table_columns
from zoo.data.tfds_source import TfdsRef, parse_tfds
from zoo.preprocessing.specs import (
    build_vocab,
    image_spec,
    image_transform,
    make_transform,
    text_spec,
    text_transform,
    validate_preprocessing,
)

__all__ = [
    "DATA_DIR_ENV",
    "DataWarning",
    "DatasetInfo",
    "TfdsRef",
    "build_vocab",
    "cifar_augment",
    "cifar_cutout_augment",
    "random_cutout",
    "fit_spec",
    "table_columns",
    "image_spec",
    "image_transform",
    "info",
    "kfold",
    "list_datasets",
    "load",
    "make_transform",
    "parse_tfds",
    "random_crop_with_padding",
    "split_slice",
    "random_flip_left_right",
    "resolve_data_dir",
    "text_spec",
    "text_transform",
    "validate_preprocessing",
]
