"""How much a chapter trains: the ``smoke``, ``cpu`` and ``gpu`` profiles.

``ALEXNET_TUT_PROFILE`` picks one; ``auto`` (the default) means ``gpu`` when a
GPU is visible and ``cpu`` otherwise. Tests and nbval use ``smoke``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from alexnet_tut.errors import AlexnetTutError

PROFILE_NAMES: tuple[str, ...] = ("smoke", "cpu", "gpu", "auto")


@dataclass(frozen=True)
class Profile:
    """The sizes a profile trains at.

    Attributes:
        name: ``smoke``, ``cpu`` or ``gpu``.
        image_size: side of the square crop the model sees (the paper: 227).
        resize: shorter side the images are resized to before cropping (the paper: 256).
        batch_size: images per step (the paper: 128).
        epochs: passes over the training set.
        max_train_per_class: cap on training images per class (``None``: all).
        max_val_per_class: cap on validation images per class (``None``: all).
        standin_only: use the offline stand-in even when other data exists,
            so that results do not depend on what the machine has downloaded.
    """

    name: str
    image_size: int
    resize: int
    batch_size: int
    epochs: int
    max_train_per_class: int | None
    max_val_per_class: int | None
    standin_only: bool = False


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", image_size=67, resize=76, batch_size=8, epochs=2,
                     max_train_per_class=8, max_val_per_class=4, standin_only=True),
    "cpu": Profile("cpu", image_size=127, resize=144, batch_size=32, epochs=8,
                   max_train_per_class=100, max_val_per_class=40),
    "gpu": Profile("gpu", image_size=227, resize=256, batch_size=128, epochs=30,
                   max_train_per_class=None, max_val_per_class=None),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else ``$ALEXNET_TUT_PROFILE``, else ``auto``."""
    name = (name or os.environ.get("ALEXNET_TUT_PROFILE") or "auto").strip().lower()
    if name not in PROFILE_NAMES:
        raise AlexnetTutError(
            f"unknown profile {name!r}: choose one of {', '.join(PROFILE_NAMES)} "
            "(set ALEXNET_TUT_PROFILE or pass --profile)"
        )
    if name == "auto":
        from alexnet_tut.devices import gpu_available

        name = "gpu" if gpu_available() else "cpu"
    return PROFILES[name]
