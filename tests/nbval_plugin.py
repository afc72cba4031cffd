"""pytest plugin for the nbval run over notebooks/ (``make test-notebooks``).

Loaded with ``-p nbval_plugin`` and ``PYTHONPATH=tests``, because a conftest.py
in tests/ does not reach notebooks that live in notebooks/.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ALEXNET_TUT_PROFILE", "cpu")  # what the committed outputs used


def pytest_collectstart(collector):
    """Do not compare stderr.

    TensorFlow writes log lines to the process's stderr from C++ (no setting
    silences all of them), and their text and timestamps change between runs.
    Everything a chapter prints on purpose goes to stdout and is compared.
    """
    if hasattr(collector, "skip_compare"):
        collector.skip_compare = collector.skip_compare + ("stderr",)
