"""The first lines of every chapter: seeds, figure style, what the run uses, and where runs are kept."""

from __future__ import annotations

import os
from pathlib import Path

import keras

from alexnet_tut.profiles import Profile, get_profile


def setup(seed: int = 0) -> Profile:
    """Make a chapter reproducible and readable, and say what it runs with.

    Fixes the Python, NumPy and backend seeds (``keras.utils.set_random_seed``),
    gives figures a white background so they read in the website's dark mode,
    and prints the Keras backend and the profile (``ALEXNET_TUT_PROFILE``,
    and the rehearsal when ``ALEXNET_TUT_REHEARSAL`` is on). Returns the
    profile, which says how much the chapter trains.
    """
    import matplotlib.pyplot as plt

    keras.utils.set_random_seed(seed)
    plt.rcParams.update(
        {
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "savefig.facecolor": "white",
            "figure.dpi": 100,
            "axes.grid": False,
        }
    )
    profile = get_profile()
    print(f"Keras backend: {keras.backend.backend()}; {profile.describe()}")
    return profile


def runs_dir() -> Path:
    """Where the chapters keep their training runs.

    ``$ALEXNET_TUT_RUNS`` if set (on Colab, a folder on Google Drive keeps a
    run across disconnects); else ``runs/`` at the top of this repository when
    the chapter runs from its ``notebooks/`` folder; else ``./runs``.
    """
    if os.environ.get("ALEXNET_TUT_RUNS"):
        return Path(os.environ["ALEXNET_TUT_RUNS"]).expanduser()
    here = Path.cwd()
    if here.name == "notebooks" and (here.parent / "_toc.yml").exists():
        return here.parent / "runs"
    return here / "runs"


def run_dir(name: str, profile: Profile) -> Path:
    """The folder of one chapter's run under one profile, e.g. ``runs/06_training/cpu``.

    A rehearsal gets a folder of its own (``gpu-rehearsal``), so that it is
    never mistaken for, or resumed as, a real run.
    """
    return runs_dir() / name / (profile.name + ("-rehearsal" if profile.rehearsal else ""))
