"""The machine: which GPU or CPU there is, which precision it computes fast, which strategy trains on it.

Every other module asks here, so that each rule is written once:

* `gpu_capability` / `gpu_available`: the first GPU the active Keras backend
  sees, and its CUDA compute capability.
* `training_precision`: the Keras dtype policy a training run uses.
* `native_mixed_precisions`: the mixed precisions this machine computes in
  hardware (for the benchmark, which times them next to float32).
* `cpu_features`: the CPU's model name and the instruction-set extensions
  that decide TensorFlow's speed on it.
* `choose_strategy`: the ``tf.distribute`` strategy for one or several GPUs
  or several machines.

TensorFlow is imported only inside the functions that need it, so the module
also serves the JAX and PyTorch backends.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import keras

#: The CPU flags (as Linux's /proc/cpuinfo names them) that matter for training speed.
CPU_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def gpu_capability() -> tuple[int, int] | None:
    """Compute capability of the first GPU the Keras backend sees, else ``None``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        return tuple(cc) if cc else (0, 0)
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            return None
        major, _, minor = str(getattr(gpus[0], "compute_capability", "0.0")).partition(".")
        return int(major), int(minor or 0)
    if backend == "torch":
        import torch

        return tuple(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None
    return None


def gpu_available() -> bool:
    """Whether the active Keras backend sees a GPU."""
    return gpu_capability() is not None


def _gpu_mixed_precision(capability: tuple[int, int]) -> str | None:
    """bfloat16 from compute capability 8.0 (A100, H100, H200), float16 on 7.x (V100, T4)."""
    if capability >= (8, 0):
        return "mixed_bfloat16"
    if capability >= (7, 0):
        return "mixed_float16"
    return None


def training_precision() -> str:
    """The Keras dtype policy a training run uses on this machine.

    On a GPU with tensor cores, mixed precision (`_gpu_mixed_precision`); on
    older GPUs and on every CPU, ``float32``: a run's numbers should not
    depend on whether a laptop happens to have bfloat16 instructions.
    """
    capability = gpu_capability()
    if capability is None:
        return "float32"
    return _gpu_mixed_precision(capability) or "float32"


def native_mixed_precisions() -> list[str]:
    """The mixed precisions this machine computes in hardware, for the benchmark.

    A GPU's tensor-core precision; on a CPU, ``mixed_bfloat16`` only where it
    has bfloat16 instructions (AVX-512 BF16 or AMX): elsewhere TensorFlow
    emulates bfloat16, slower than float32.
    """
    capability = gpu_capability()
    if capability is not None:
        mixed = _gpu_mixed_precision(capability)
        return [mixed] if mixed else []
    flags = cpu_features()["flags"]
    return ["mixed_bfloat16"] if flags.get("avx512_bf16") or flags.get("amx_bf16") else []


def cpu_features() -> dict:
    """The CPU's model name, core count and the `CPU_FLAGS` it has (``True``/``False``).

    Read from ``/proc/cpuinfo`` on Linux; elsewhere the flags are unknown
    (``None``).
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    model, flags = platform.processor() or platform.machine(), set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return {
        "model": model,
        "cores": os.cpu_count(),
        "flags": {flag: (flag in flags) if text else None for flag in CPU_FLAGS},
    }


def choose_strategy():
    """The ``tf.distribute`` strategy for this machine (or these machines).

    * ``TF_CONFIG`` set (several machines): ``MultiWorkerMirroredStrategy``,
      in the form :func:`alexnet_tut.distribute.multi_worker_strategy` gives,
      which ``Model.fit`` can train under in Keras 3. Each machine runs the
      same program with its own ``TF_CONFIG``, e.g. on the first of two::

          TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                      "task": {"type": "worker", "index": 0}}'

      and ``"index": 1`` on the second. The batch size is the global one.
    * More than one GPU: ``MirroredStrategy`` (data parallelism, one replica
      per GPU, gradients summed with all-reduce).
    * Otherwise the default strategy (one device).
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        from alexnet_tut.distribute import multi_worker_strategy

        return multi_worker_strategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans several worker processes (``TF_CONFIG``)."""
    if keras.backend.backend() != "tensorflow" or strategy is None:
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
