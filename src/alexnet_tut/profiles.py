"""How much a chapter trains: the ``smoke``, ``cpu`` and ``gpu`` profiles, and the rehearsal switch.

``ALEXNET_TUT_PROFILE`` picks one; ``auto`` (the default) means ``gpu`` when a
GPU is visible and ``cpu`` otherwise. Unit tests use ``smoke``; the committed
chapters, nbval and the website use ``cpu``; Colab with a GPU uses ``gpu``.

``ALEXNET_TUT_REHEARSAL=1`` keeps everything a profile does (image size,
resize, batch, the whole dataset, decoding and caching, statistics, every
figure and table) but trains at most `REHEARSAL_STEPS` steps per epoch for at
most `REHEARSAL_EPOCHS` epochs and evaluates at most `REHEARSAL_STEPS`
batches. It exists so that the ``gpu`` profile's memory and code paths can be
exercised on a CPU (``make rehearse``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from alexnet_tut.errors import AlexnetTutError

PROFILE_NAMES: tuple[str, ...] = ("smoke", "cpu", "gpu", "auto")

#: Under ``ALEXNET_TUT_REHEARSAL=1``: steps per epoch and evaluation batches, and epochs.
REHEARSAL_STEPS = 3
REHEARSAL_EPOCHS = 2


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
        rehearsal: train and evaluate only a few batches (``ALEXNET_TUT_REHEARSAL``).
    """

    name: str
    image_size: int
    resize: int
    batch_size: int
    epochs: int
    max_train_per_class: int | None
    max_val_per_class: int | None
    standin_only: bool = False
    rehearsal: bool = False

    def describe(self) -> str:
        """One line for people: the profile and, when on, the rehearsal."""
        line = (f"profile {self.name}: {self.image_size}px crops of {self.resize}px images, "
                f"batch {self.batch_size}, {self.epochs} epoch{'' if self.epochs == 1 else 's'}")
        if self.rehearsal:
            line += (f" (REHEARSAL: at most {REHEARSAL_STEPS} steps per epoch, "
                     f"{REHEARSAL_EPOCHS} epochs, {REHEARSAL_STEPS} evaluation batches)")
        return line


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", image_size=67, resize=76, batch_size=8, epochs=2,
                     max_train_per_class=8, max_val_per_class=4, standin_only=True),
    "cpu": Profile("cpu", image_size=127, resize=144, batch_size=32, epochs=20,
                   max_train_per_class=120, max_val_per_class=40),
    "gpu": Profile("gpu", image_size=227, resize=256, batch_size=128, epochs=30,
                   max_train_per_class=None, max_val_per_class=None),
}


def rehearsal_requested() -> bool:
    """Whether ``ALEXNET_TUT_REHEARSAL`` asks for a rehearsal (``1``, ``true``, ``yes``)."""
    return os.environ.get("ALEXNET_TUT_REHEARSAL", "").strip().lower() in ("1", "true", "yes", "on")


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else ``$ALEXNET_TUT_PROFILE``, else ``auto``.

    With ``ALEXNET_TUT_REHEARSAL=1`` the profile comes back with ``rehearsal=True``.
    """
    name = (name or os.environ.get("ALEXNET_TUT_PROFILE") or "auto").strip().lower()
    if name not in PROFILE_NAMES:
        raise AlexnetTutError(
            f"unknown profile {name!r}: choose one of {', '.join(PROFILE_NAMES)} "
            "(set ALEXNET_TUT_PROFILE or pass --profile)"
        )
    if name == "auto":
        from alexnet_tut.devices import gpu_available

        name = "gpu" if gpu_available() else "cpu"
    profile = PROFILES[name]
    return replace(profile, rehearsal=True) if rehearsal_requested() else profile
