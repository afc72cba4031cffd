"""pytest configuration for the unit tests."""

import os

import pytest

# TensorFlow's C++ log lines go straight to stderr; keep them out of the way.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests train at the smallest size unless told otherwise.
os.environ.setdefault("ALEXNET_TUT_PROFILE", "smoke")

# First, as in the chapters: the package chooses TensorFlow's CPU kernels before TensorFlow starts.
import alexnet_tut  # noqa: E402, F401


@pytest.fixture
def record_calls(monkeypatch):
    """``record_calls(module, name)`` wraps ``module.name`` so that every call still runs it
    and appends the shape of its first argument to the list it returns."""

    def record(module, name):
        calls = []
        original = getattr(module, name)

        def wrapper(first, *args, **kwargs):
            calls.append(tuple(first.shape))
            return original(first, *args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)
        return calls

    return record
