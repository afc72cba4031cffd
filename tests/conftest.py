"""pytest configuration for the unit tests."""

import os

# TensorFlow's C++ log lines go straight to stderr; keep them out of the way.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests train at the smallest size unless told otherwise.
os.environ.setdefault("ALEXNET_TUT_PROFILE", "smoke")
