"""Training images per second of the book's AlexNets, next to a plain PyTorch AlexNet.

``alexnet-tut bench`` times one SGD training step (forward, backward, update)
on in-memory synthetic batches, so that the number measures the model and the
framework, not the input pipeline:

* the Keras models ``paper`` (two towers, LRN) and ``one_tower``, on whatever
  Keras backend is active (TensorFlow, or JAX with ``KERAS_BACKEND=jax``; this
  module imports TensorFlow only when it is the backend);
* a plain ``torch.nn`` AlexNet with the very same layers (grouped
  convolutions, LRN with the paper's constants), same batch, same precision;
* in float32, and in mixed precision where the hardware has it (bfloat16 on
  CPUs with AVX512-BF16/AMX and on GPUs of compute capability 8.0+, float16 on
  7.x GPUs).

Each configuration first compiles and runs one untimed round. Then the
benchmark times the configurations interleaved, round by round, so that a busy
machine slows all of them alike; each result is the median over rounds.
Alongside, the machine's float32 matrix-multiply rate serves as its practical
peak: the best of NumPy, PyTorch and the active Keras backend on a large
square matmul, measured in every round with the steps. Each result says what
fraction of it the step reaches. (The libraries' matmuls differ by up to two
times on one machine, so a peak from one library alone could flatter the
step.) A training step costs about
three forward passes: $3 \\times 2 \\times$ MACs floating-point operations per
image (MACs from :func:`alexnet_tut.costs.total_macs`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from alexnet_tut import devices
from alexnet_tut.architectures import PAPER_LRN
from alexnet_tut.errors import AlexnetTutError

BENCH_VARIANTS: tuple[str, ...] = ("paper", "one_tower")
DEFAULT_STEPS = 3
DEFAULT_ROUNDS = 2


# --------------------------------------------------------------------------
# The machine's practical peak
# --------------------------------------------------------------------------

def default_precisions() -> list[str]:
    """float32, plus the mixed precision this machine computes natively, if any."""
    return ["float32", *devices.native_mixed_precisions()]


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """The best float32 GFLOP/s of an ``n``×``n`` matmul with NumPy, PyTorch (if installed)
    and the active Keras backend (``keras-tensorflow``, ``keras-jax``, ...)."""
    rates: dict[str, float] = {}
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    rates["numpy"] = _best_rate(lambda: np.matmul(a, a), 2 * n**3, repeats)
    torch = _torch()
    if torch is not None:
        t = torch.from_numpy(a)
        if torch.cuda.is_available():
            t = t.cuda()
            sync = torch.cuda.synchronize
        else:
            sync = lambda: None  # noqa: E731
        rates["torch"] = _best_rate(lambda: (torch.mm(t, t), sync()), 2 * n**3, repeats)
    k = keras.ops.convert_to_tensor(a)
    # Reading one element back waits for the device without copying the product.
    rates[f"keras-{keras.backend.backend()}"] = _best_rate(
        lambda: keras.ops.convert_to_numpy(keras.ops.matmul(k, k)[0, 0]), 2 * n**3, repeats)
    return rates


def _best_rate(fn: Callable[[], Any], flops: float, repeats: int) -> float:
    fn()  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# --------------------------------------------------------------------------
# The two training steps
# --------------------------------------------------------------------------

def keras_step(variant: str, batch_size: int, precision: str, image_size: int = 227,
               num_classes: int = 1000, seed: int = 0) -> tuple[Callable[[], None], int]:
    """A Keras training step on one fixed synthetic batch, and the model's MACs per image.

    The model and its compilation are the training chapter's: ``build_alexnet``
    and :func:`alexnet_tut.solver.compile_model` (the paper's SGD with momentum
    and weight decay, cross-entropy on logits, top-1/top-5 metrics,
    ``jit_compile="auto"``: XLA on GPUs).
    """
    from alexnet_tut.costs import total_macs
    from alexnet_tut.models import build_alexnet
    from alexnet_tut.recipe import get_recipe
    from alexnet_tut.solver import compile_model

    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        model = build_alexnet(variant, input_shape=(image_size, image_size, 3),
                              num_classes=num_classes)
        compile_model(model, get_recipe(), batch_size=batch_size)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, image_size, image_size, 3), dtype=np.float32)
    y = rng.integers(0, num_classes, batch_size).astype("int32")
    x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)

    def step() -> None:
        logs = model.train_on_batch(x, y, return_dict=True)
        float(logs["loss"])  # wait for the device

    return step, total_macs(model)


def torch_alexnet(variant: str, num_classes: int = 1000, image_size: int = 227):
    """A plain ``torch.nn`` AlexNet with the same layers as the book's Keras model.

    ``paper``: grouped conv2/4/5 (``groups=2``) and LRN after conv1 and conv2
    with the paper's constants (`alexnet_tut.architectures.PAPER_LRN`;
    PyTorch divides α by the window size, so α is passed as n·α).
    ``one_tower``: 96-256-384-384-256, no LRN. Both take 227×227 images with
    no padding in conv1, as the paper's Figure 2.
    """
    import torch.nn as nn

    groups, lrn = (2, True) if variant == "paper" else (1, False)
    side = (image_size - 11) // 4 + 1  # conv1, valid
    for _ in range(3):  # three 3×3 / 2 max-pools
        side = (side - 3) // 2 + 1

    def norm():
        lrn_ = PAPER_LRN
        return [nn.LocalResponseNorm(lrn_.n, alpha=lrn_.n * lrn_.alpha, beta=lrn_.beta,
                                     k=lrn_.k)] if lrn else []

    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), *norm(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=groups), nn.ReLU(inplace=True), *norm(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1, groups=groups), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1, groups=groups), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(256 * side * side, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, num_classes),
    )


def torch_step(variant: str, batch_size: int, precision: str, image_size: int = 227,
               num_classes: int = 1000, seed: int = 0) -> Callable[[], None]:
    """The same training step in plain PyTorch: SGD momentum 0.9, weight decay 5e-4, autocast."""
    torch = _torch()
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = torch_alexnet(variant, num_classes, image_size).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch_size, 3, image_size, image_size, device=device)
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    dtype = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device) if dtype == torch.float16 else None

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        loss.item()  # wait for the device

    return step


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------

def run(
    batch_size: int | None = None,
    steps: int | None = None,
    json_path: str | os.PathLike | None = None,
    *,
    variants: tuple[str, ...] = BENCH_VARIANTS,
    precisions: list[str] | None = None,
    rounds: int = DEFAULT_ROUNDS,
    image_size: int = 227,
    num_classes: int = 1000,
    include_torch: bool = True,
    verbose: bool = True,
) -> dict:
    """Measure training images/s of Keras and PyTorch AlexNets side by side; return the record.

    Args:
        batch_size: images per step; default the batch the ``auto`` profile
            trains with (32 on a CPU, the paper's 128 on a GPU).
        steps: timed steps per configuration and round (default 3).
        json_path: also write the record there as JSON.
        variants: the book's models to time.
        precisions: Keras dtype policies; default :func:`default_precisions`.
        rounds: how many times the configurations are interleaved.
        image_size, num_classes: the input and output size (the paper's 227, 1000).
        include_torch: time the PyTorch step too (when PyTorch is installed).
        verbose: print a table as results arrive.
    """
    if batch_size is None:
        from alexnet_tut.profiles import get_profile

        batch_size = get_profile("auto").batch_size
    steps = DEFAULT_STEPS if steps is None else steps
    for name, value in (("--batch-size", batch_size), ("--steps", steps), ("rounds", rounds)):
        if not isinstance(value, int) or value < 1:
            raise AlexnetTutError(f"{name} must be a whole number of at least 1, got {value!r}")
    for variant in variants:
        if variant not in BENCH_VARIANTS:
            raise AlexnetTutError(
                f"unknown variant {variant!r}: choose from {', '.join(BENCH_VARIANTS)}")
    precisions = list(precisions or default_precisions())
    say = print if verbose else (lambda *a, **k: None)
    torch = _torch() if include_torch else None
    backend = keras.backend.backend()
    machine = machine_record()
    say(f"machine: {describe_machine(machine)}")
    if devices.CPU_KERNELS_CHOICE:
        say(f"CPU kernels: {devices.CPU_KERNELS_CHOICE}")
    say(f"precisions: {', '.join(precisions)} (mixed precision only where the hardware computes it)")

    peak: dict[str, float] = {}

    configs: list[dict] = []
    for variant in variants:
        for precision in precisions:
            step, macs = keras_step(variant, batch_size, precision, image_size, num_classes)
            configs.append({"framework": f"keras-{backend}", "variant": variant,
                            "precision": precision, "step": step, "macs": macs})
            if torch is not None:
                configs.append({"framework": "torch", "variant": variant, "precision": precision,
                                "step": torch_step(variant, batch_size, precision, image_size,
                                                   num_classes),
                                "macs": macs})
    # Compile, then run one untimed round: the first steps after compiling
    # still grow memory pools and caches.
    for config in configs:
        for _ in range(1 + steps):
            config["step"]()
        config["times"] = []
    for _ in range(rounds):
        for config in configs:
            start = time.perf_counter()
            for _ in range(steps):
                config["step"]()
            config["times"].append((time.perf_counter() - start) / steps)
        for library, rate in matmul_peak_gflops(repeats=2).items():  # the same load as the steps
            peak[library] = max(peak.get(library, 0.0), rate)
    say("fp32 matmul peak: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()))

    best_peak = max(peak.values())
    results = []
    for config in configs:
        seconds = statistics.median(config["times"])
        images_per_sec = batch_size / seconds
        train_gflop = 3 * 2 * config["macs"] / 1e9
        result = {
            "framework": config["framework"],
            "variant": config["variant"],
            "precision": config["precision"],
            "images_per_sec": images_per_sec,
            "step_ms": seconds * 1e3,
            "step_ms_per_round": [t * 1e3 for t in config["times"]],
            "train_gflop_per_image": train_gflop,
            "achieved_gflops": images_per_sec * train_gflop,
            "fraction_of_fp32_matmul_peak": images_per_sec * train_gflop / best_peak,
        }
        results.append(result)
        say(f"{result['framework']:>17} {result['variant']:>9} {result['precision']:>14}: "
            f"{images_per_sec:8.1f} images/s, {result['achieved_gflops']:7.0f} GFLOP/s "
            f"({result['fraction_of_fp32_matmul_peak']:.0%} of the fp32 matmul peak)")

    record = {
        "benchmark": "alexnet-tut training step, synthetic in-memory batches",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "settings": {"batch_size": batch_size, "steps": steps, "rounds": rounds,
                     "image_size": image_size, "num_classes": num_classes,
                     "precisions": precisions, "variants": list(variants),
                     "interleaved": True, "statistic": "median over rounds"},
        "fp32_matmul_peak_gflops": peak,
        "results": results,
        "keras_over_torch": _ratios(results, f"keras-{backend}"),
    }
    for key, ratio in record["keras_over_torch"].items():
        say(f"Keras / PyTorch, {key}: {ratio:.2f}×")
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(record, indent=2))
    return record


def _ratios(results: list[dict], keras_name: str) -> dict[str, float]:
    by_key = {(r["framework"], r["variant"], r["precision"]): r["images_per_sec"]
              for r in results}
    return {f"{variant}/{precision}": speed / by_key[("torch", variant, precision)]
            for (framework, variant, precision), speed in by_key.items()
            if framework == keras_name and ("torch", variant, precision) in by_key}


def machine_record() -> dict:
    """The machine a measurement was made on: what a speed figure means nothing without.

    The CPU's model and core count, the instruction-set extensions that decide
    TensorFlow's and PyTorch's speed on it (AVX2, AVX-512, AVX-512 BF16, AMX),
    whether TensorFlow runs its oneDNN kernels (and who chose that), any GPU,
    and the versions of Python and the libraries.
    """
    backend = keras.backend.backend()
    cpu = devices.cpu_features()
    torch = _torch()
    info = {
        "cpu_model": cpu["model"],
        "cpu_cores": cpu["cores"],
        "cpu_flags": cpu["flags"],
        "onednn": devices.onednn_enabled() if backend == "tensorflow" else None,
        "cpu_kernels_choice": devices.CPU_KERNELS_CHOICE,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_backend": backend,
        "gpu_compute_capability": devices.gpu_capability(),
        "torch": getattr(torch, "__version__", None),
        "numpy": np.__version__,
    }
    if backend == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    elif backend == "jax":
        import jax

        info["jax"] = jax.__version__
        info["jax_devices"] = [str(d) for d in jax.devices()]
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["torch_cuda"] = torch.cuda.is_available()
    return info


def describe_machine(info: dict) -> str:
    """`machine_record` as one line for people."""
    flags = [name for name, present in (info.get("cpu_flags") or {}).items() if present]
    onednn = {True: "on", False: "off", None: "n/a"}[info.get("onednn")]
    return (f"{info['cpu_model']}, {info['cpu_cores']} cores, flags: {' '.join(flags) or 'unknown'}; "
            f"oneDNN {onednn}; Keras {info['keras']} ({info['keras_backend']}"
            + (f" {info['tensorflow']}" if "tensorflow" in info else "")
            + (f"), PyTorch {info['torch']}" if info.get("torch") else ")"))
