"""A run resumed at epoch k trains, under ``fit`` on each Keras backend, on an unbroken run's epoch k."""

from __future__ import annotations

import pytest

from tests.helpers import DATA_DIR

pytestmark = pytest.mark.skipif(
    not (DATA_DIR / "cifar10-lossless").is_dir(), reason=f"no CIFAR-10 under {DATA_DIR}"
)


def _epoch_losses(initial_epoch: int, epochs: int) -> list[float]:
    """Each epoch's loss of a model that does not learn: a function of that epoch's images only."""
    import keras

    import zoo.data

    data = zoo.data.load(
        "cifar10",
        "test",
        batch_size=500,
        shuffle=True,
        seed=3,
        augment="cifar_cutout",
        as_supervised=True,
        initial_epoch=initial_epoch,
        data_dir=str(DATA_DIR),
    )
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3), dtype="uint8"),
            keras.layers.Rescaling(1 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, kernel_initializer="ones", trainable=False),
        ]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model.fit(data, epochs=epochs, shuffle=False, verbose=0).history["loss"]


def test_a_resumed_fit_sees_the_augmented_epochs_of_an_unbroken_one():
    unbroken = _epoch_losses(0, 3)
    resumed = _epoch_losses(1, 2)
    assert len(set(unbroken)) == 3, "each epoch draws new crops, flips and Cutout squares"
    assert resumed == pytest.approx(unbroken[1:], rel=1e-6)
