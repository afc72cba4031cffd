"""Where downloads and the offline stand-in are kept on this machine."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """Where downloads and the stand-in are kept.

    ``$ALEXNET_TUT_DATA_HOME`` if set, else ``$KERAS_HOME/datasets``, else
    ``~/.keras/datasets`` (where `keras.utils.get_file` keeps its files).
    """
    if os.environ.get("ALEXNET_TUT_DATA_HOME"):
        return Path(os.environ["ALEXNET_TUT_DATA_HOME"]).expanduser()
    keras_home = os.environ.get("KERAS_HOME") or "~/.keras"
    return Path(keras_home).expanduser() / "datasets"
