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
* `choose_cpu_kernels`: turns on TensorFlow's oneDNN kernels before
  TensorFlow starts, on CPUs where TensorFlow would leave them off.

Keras and TensorFlow are imported only inside the functions that need them,
so that `choose_cpu_kernels` can run before either starts.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

#: The CPU flags (as Linux's /proc/cpuinfo names them) that matter for training speed.
CPU_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def _backend() -> str:
    import keras

    return keras.backend.backend()


def gpu_capability() -> tuple[int, int] | None:
    """Compute capability of the first GPU the Keras backend sees, else ``None``."""
    backend = _backend()
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
    if _backend() != "tensorflow" or strategy is None:
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


# --------------------------------------------------------------------------
# oneDNN: chosen before TensorFlow starts
# --------------------------------------------------------------------------

#: What `choose_cpu_kernels` decided in this process (``None``: not called yet).
CPU_KERNELS_CHOICE: str | None = None


def choose_cpu_kernels() -> str:
    """Turn on TensorFlow's oneDNN kernels where TensorFlow leaves them off; say what was chosen.

    TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI, BF16
    or AMX; on a CPU with AVX2 alone it runs its slower Eigen kernels. The
    book's training step is faster with oneDNN on every CPU it was measured
    on (``benchmarks/README.md``), so before TensorFlow is imported this sets
    ``TF_ENABLE_ONEDNN_OPTS=1`` on x86-64. A value the user set is left
    alone, and so is a process that imported TensorFlow already (the choice
    is made once, when TensorFlow starts). The package does this when it is
    first imported; `alexnet_tut.notebook.setup` and ``alexnet-tut`` print the
    returned line.
    """
    global CPU_KERNELS_CHOICE
    if CPU_KERNELS_CHOICE is not None:
        return CPU_KERNELS_CHOICE
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is not None:
        choice = f"TF_ENABLE_ONEDNN_OPTS={value} (your setting, left as it is)"
    elif "tensorflow" in sys.modules:
        choice = "oneDNN as TensorFlow chose: TensorFlow started before alexnet_tut was imported"
    elif platform.machine().lower() in ("x86_64", "amd64"):
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
        choice = "TF_ENABLE_ONEDNN_OPTS=1 (set by alexnet_tut: oneDNN kernels on this CPU)"
    else:
        choice = "oneDNN as TensorFlow chooses (not an x86-64 CPU)"
    CPU_KERNELS_CHOICE = choice
    return choice


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels in this process (``None``: TensorFlow not started)."""
    if "tensorflow" not in sys.modules:
        return None
    from alexnet_tut.internals import tensorflow_uses_onednn

    return tensorflow_uses_onednn()
