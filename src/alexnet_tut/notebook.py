"""The first lines of every chapter: seeds, figure style, and what the run uses."""

from __future__ import annotations

import keras

from alexnet_tut.profiles import Profile, get_profile


def setup(seed: int = 0) -> Profile:
    """Make a chapter reproducible and readable, and say what it runs with.

    Fixes the Python, NumPy and backend seeds (``keras.utils.set_random_seed``),
    gives figures a white background so they read in the website's dark mode,
    and prints the Keras backend and the profile (``ALEXNET_TUT_PROFILE``).
    Returns the profile, which says how much the chapter trains.
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
    print(f"Keras backend: {keras.backend.backend()}; profile: {profile.name}")
    return profile
