"""The machine: CPU features read from /proc/cpuinfo, precision by capability, and the oneDNN choice
made before TensorFlow starts (both branches, in fresh processes)."""

import os

import pytest

from alexnet_tut import devices
from processes import run_python

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx fma avx2
"""


def test_cpu_features_are_read_from_cpuinfo(tmp_path, monkeypatch):
    fake = tmp_path / "cpuinfo"
    fake.write_text(CPUINFO)
    real_path = devices.Path
    monkeypatch.setattr(devices, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p))
    features = devices.cpu_features()
    assert features["model"] == "AMD EPYC 7B13"
    assert features["flags"] == {"avx2": True, "fma": True, "avx512f": False,
                                 "avx512_bf16": False, "amx_bf16": False, "amx_tile": False}
    assert devices.native_mixed_precisions() == []  # bfloat16 would be emulated here


def test_bfloat16_only_where_the_cpu_computes_it(monkeypatch):
    for flags, expected in (({"avx512_bf16": True}, ["mixed_bfloat16"]),
                            ({"amx_bf16": True}, ["mixed_bfloat16"]),
                            ({"avx2": True}, [])):
        monkeypatch.setattr(devices, "cpu_features", lambda flags=flags: {"flags": flags})
        assert devices.native_mixed_precisions() == expected


def test_gpu_precision_follows_the_compute_capability(monkeypatch):
    for capability, expected in (((9, 0), "mixed_bfloat16"), ((8, 0), "mixed_bfloat16"),
                                 ((7, 5), "mixed_float16"), ((6, 1), "float32"), (None, "float32")):
        monkeypatch.setattr(devices, "gpu_capability", lambda c=capability: c)
        assert devices.training_precision() == expected


CHOICE = """
import json, os
import alexnet_tut
from alexnet_tut import devices
import tensorflow
print(json.dumps({"choice": devices.CPU_KERNELS_CHOICE, "onednn": devices.onednn_enabled(),
                  "env": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}))
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the choice is made on x86-64 only")
def test_importing_the_package_turns_onednn_on_before_tensorflow_starts():
    result = run_python(CHOICE, TF_ENABLE_ONEDNN_OPTS=None)
    assert result["env"] == "1" and result["onednn"] is True
    assert "set by alexnet_tut" in result["choice"]


@pytest.mark.parametrize("value, onednn", [("0", False), ("1", True)])
def test_a_users_onednn_setting_is_left_alone(value, onednn):
    result = run_python(CHOICE, TF_ENABLE_ONEDNN_OPTS=value)
    assert result["env"] == value and result["onednn"] is onednn
    assert "your setting" in result["choice"]


def test_too_late_when_tensorflow_started_first():
    code = "import tensorflow\n" + CHOICE
    result = run_python(code, TF_ENABLE_ONEDNN_OPTS=None)
    assert result["env"] is None and "TensorFlow started before" in result["choice"]
