"""The training benchmark: a tiny run, and the record's fields."""

import json
import os
import subprocess
import sys

import keras
import pytest

from alexnet_tut import bench
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.architectures import PAPER_LRN
from alexnet_tut.costs import total_macs
from alexnet_tut.models import build_alexnet

TINY = dict(batch_size=2, steps=1, rounds=1, image_size=67, num_classes=10,
            precisions=["float32"], verbose=False)


def test_tiny_bench_record_has_every_field(tmp_path):
    pytest.importorskip("torch")  # the bench's other side; not in requirements-oldest.txt
    path = tmp_path / "bench.json"
    record = bench.run(json_path=path, **TINY)
    assert json.loads(path.read_text()) == json.loads(json.dumps(record))
    assert record["settings"]["batch_size"] == 2 and record["settings"]["interleaved"]
    assert set(record["fp32_matmul_peak_gflops"]) == {"numpy", "torch", "keras-tensorflow"}
    assert min(record["fp32_matmul_peak_gflops"].values()) > 0
    frameworks = {(r["framework"], r["variant"]) for r in record["results"]}
    assert frameworks == {("keras-tensorflow", "paper"), ("keras-tensorflow", "one_tower"),
                          ("torch", "paper"), ("torch", "one_tower")}
    for result in record["results"]:
        assert result["images_per_sec"] > 0
        assert 0 < result["fraction_of_fp32_matmul_peak"]
        assert result["achieved_gflops"] == pytest.approx(
            result["images_per_sec"] * result["train_gflop_per_image"])
    assert set(record["keras_over_torch"]) == {"paper/float32", "one_tower/float32"}


def test_torch_model_has_the_keras_models_layers():
    torch = pytest.importorskip("torch")
    for variant, params in (("paper", 60_965_224), ("one_tower", 62_378_344)):
        model = bench.torch_alexnet(variant)
        assert sum(p.numel() for p in model.parameters()) == params
        assert build_alexnet(variant).count_params() == params
        assert model(torch.zeros(1, 3, 227, 227)).shape == (1, 1000)
        norms = [m for m in model if isinstance(m, torch.nn.LocalResponseNorm)]
        assert len(norms) == (2 if variant == "paper" else 0)
        for norm in norms:  # PyTorch divides alpha by the window: n·α gives the paper's α
            assert (norm.size, norm.alpha / norm.size, norm.beta, norm.k) == pytest.approx(
                (PAPER_LRN.n, PAPER_LRN.alpha, PAPER_LRN.beta, PAPER_LRN.k))


def test_training_flops_per_image_are_three_forward_passes():
    record = bench.run(variants=("paper",), include_torch=False, **TINY)
    macs = total_macs(build_alexnet("paper", input_shape=(67, 67, 3), num_classes=10))
    assert record["results"][0]["train_gflop_per_image"] == pytest.approx(6 * macs / 1e9)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(AlexnetTutError, match="--steps must be"):
        bench.run(steps=0, verbose=False)
    with pytest.raises(AlexnetTutError, match="unknown variant"):
        bench.run(variants=("vgg",), verbose=False)


@pytest.mark.slow
def test_runs_under_jax_without_tensorflow():
    pytest.importorskip("jax")
    code = (
        "import sys, json\n"
        "from alexnet_tut import bench\n"
        f"record = bench.run(variants=('paper',), **{TINY!r})\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
        "print(json.dumps(sorted({r['framework'] for r in record['results']})))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["keras-jax", "torch"]


def test_machine_record_names_the_cpu_its_extensions_onednn_and_versions():
    record = json.loads(json.dumps(bench.machine_record()))  # what the bench's JSON holds
    for key in ("cpu_model", "cpu_cores", "cpu_flags", "onednn", "cpu_kernels_choice", "python",
                "keras", "keras_backend", "numpy", "torch"):
        assert key in record, key
    assert set(record["cpu_flags"]) >= {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    assert all(isinstance(present, bool) for present in record["cpu_flags"].values())
    assert record["cpu_cores"] >= 1 and record["keras"] == keras.__version__
    if record["keras_backend"] == "tensorflow":
        assert record["onednn"] in (True, False) and "tensorflow" in record
    assert f"{record['cpu_cores']} cores" in bench.describe_machine(record)
