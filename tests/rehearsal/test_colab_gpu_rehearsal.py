"""The reader's real run, rehearsed: chapters 05-09 under the ``gpu`` profile on an Imagenette-shaped
folder, with every download served by a mirror on 127.0.0.1 (``make rehearse``).

What Colab does with a GPU, done here on a CPU:

1. ``alexnet-tut data imagenette --size 160px`` through ``ALEXNET_TUT_MIRROR``: the archive made
   here does not match the pinned checksum, so the first try must stop with a one-line error and
   keep nothing; ``--trust-new-checksum`` then accepts it.
2. Chapters 05-09 run top to bottom with ``ALEXNET_TUT_PROFILE=gpu ALEXNET_TUT_REHEARSAL=1``: the
   ``gpu`` profile's image size, batch and the whole dataset, decoded and cached, but only a few
   training steps. The mirror also serves torchvision-format weights and a class index (random
   values, real names and shapes), so chapters 08 and 09 take their online branch.
3. Each chapter's kernel's peak resident memory (Linux's VmHWM) must stay below 8 GB of what a
   Colab runtime's host would hold (it has about 12). A chapter that trains the ``gpu``
   profile's model holds that model's weights, optimizer state and activations in its RSS here,
   on the CPU; on Colab they are in GPU memory. `model_footprint` measures that part in a
   process of its own (the paper model at 227 × 227, batch 128, three training steps), and the
   check subtracts it for those chapters only. The raw peak must still fit in Colab's 12 GB.

The results go to ``_build/rehearsal/summary.json`` and the executed chapters to
``_build/rehearsal/``. Not part of ``make test``: it takes about ten minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from imagenette_like import (Mirror, fake_class_index, fake_torchvision_weights, pack,
                             write_imagenette_like)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "_build" / "rehearsal"
CHAPTERS = ["05_data", "06_training", "07_scaling_out", "08_filters", "09_feature_maps"]
PEAK_RSS_LIMIT = 8e9
COLAB_RAM = 12e9
#: Chapters that train the gpu profile's model in their own kernel (see point 3 above).
TRAINS_THE_GPU_MODEL = {"06_training"}
TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def mirror():
    """The mirror's folder, laid out like the real servers' paths, and the server."""
    site = OUT / "mirror"
    source = write_imagenette_like(OUT / "source")
    pack(source, site / "fast-ai-imageclas" / "imagenette2-160.tgz")
    weights = site / "models" / "alexnet-owt-7be5be79.pth"
    if not weights.exists():
        fake_torchvision_weights(weights)
    fake_class_index(site / "download.tensorflow.org" / "data" / "imagenet_class_index.json")
    server = Mirror(site)
    yield server
    server.close()


@pytest.fixture(scope="module")
def environment(mirror, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    env = {
        "ALEXNET_TUT_MIRROR": mirror.url,
        "ALEXNET_TUT_DATA_HOME": str(home / "datasets"),
        "KERAS_HOME": str(home / "keras"),
        "ALEXNET_TUT_RUNS": str(home / "runs"),
        "ALEXNET_TUT_PROFILE": "gpu",
        "ALEXNET_TUT_REHEARSAL": "1",
        # The mirror's weights and class index are the test's own, not the published files.
        "ALEXNET_TUT_TRUST_NEW_CHECKSUMS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    for key in ("ALEXNET_TUT_OFFLINE", "ALEXNET_TUT_DATA"):
        os.environ.pop(key, None)
    os.environ.update(env)
    return env


def cli(*args: str) -> subprocess.CompletedProcess:
    """The command as a reader types it: without the rehearsal's trust in the mirror's files."""
    env = {k: v for k, v in os.environ.items() if k != "ALEXNET_TUT_TRUST_NEW_CHECKSUMS"}
    return subprocess.run([sys.executable, "-m", "alexnet_tut", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def test_download_through_the_mirror_refuses_a_new_checksum_then_trusts_it(environment):
    home = Path(environment["ALEXNET_TUT_DATA_HOME"])
    refused = cli("data", "imagenette", "--size", "160px")
    assert refused.returncode == 2, refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: checksum mismatch"), lines
    assert "--trust-new-checksum" in lines[0] and "Traceback" not in refused.stderr
    assert not list(home.glob("imagenette2-160*")), "a refused archive must not be kept"
    accepted = cli("data", "imagenette", "--size", "160px", "--trust-new-checksum")
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    root = home / "imagenette2-160"
    report = json.loads(cli("data", "scan", str(root), "--json").stdout)
    assert report["splits"] == {"train": 9_469, "val": 3_925} and len(report["classes"]) == 10


def run_chapter(name: str) -> dict:
    """Execute one chapter in a fresh kernel; return its peak RSS, time and any error."""
    path = ROOT / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started, error, peak, rises = time.perf_counter(), None, 0, []
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                now = _peak_rss(pid)
                if now > peak and cell.cell_type == "code":
                    rises.append((now - peak, index, cell.source.splitlines()[0][:80]))
                peak = now
        except Exception as exc:  # noqa: BLE001 (reported, and the test fails on it)
            error = f"{type(exc).__name__}: {str(exc)[-1500:]}"
        peak = _peak_rss(pid)
    OUT.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, OUT / f"{name}.ipynb")
    # The cell whose run raised the peak most: where to look when a chapter needs too much memory.
    rise, cell, first_line = max(rises, default=(0, None, ""))
    return {"chapter": name, "peak_rss_bytes": peak, "seconds": time.perf_counter() - started,
            "largest_rise": {"bytes": rise, "cell": cell, "first_line": first_line},
            "error": error}


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def _outputs(name: str) -> str:
    nb = nbformat.read(OUT / f"{name}.ipynb", as_version=4)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


FOOTPRINT_SCRIPT = """
from pathlib import Path
import numpy as np
import alexnet_tut
from alexnet_tut.profiles import get_profile
from alexnet_tut.recipe import get_recipe
from alexnet_tut.solver import build_model, compile_model

def kib(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key))
    return int(line.split()[1])

profile, recipe = get_profile("gpu"), get_recipe("paper")
x = np.zeros((profile.batch_size, profile.image_size, profile.image_size, 3), "float32")
y = np.zeros(profile.batch_size, "int32")
before = kib("VmRSS:")
model = compile_model(build_model("paper", profile.image_size, 10, recipe), recipe,
                      batch_size=profile.batch_size)
for _ in range(3):
    model.train_on_batch(x, y)
print((kib("VmHWM:") - before) * 1024)
"""


@pytest.fixture(scope="module")
def model_footprint(environment) -> int:
    """Bytes of RSS that the gpu profile's paper model and its training steps take on this CPU."""
    done = subprocess.run([sys.executable, "-c", FOOTPRINT_SCRIPT], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "ALEXNET_TUT_REHEARSAL": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


@pytest.fixture(scope="module")
def chapters(environment, model_footprint):
    results = [run_chapter(name) for name in CHAPTERS]
    for r in results:
        on_gpu = model_footprint if r["chapter"] in TRAINS_THE_GPU_MODEL else 0
        r["model_on_gpu_bytes"], r["host_rss_bytes"] = on_gpu, r["peak_rss_bytes"] - on_gpu
    (OUT / "summary.json").write_text(json.dumps(results, indent=2))
    for r in results:
        rise = r["largest_rise"]
        print(f"{r['chapter']}: peak RSS {r['peak_rss_bytes'] / 1e9:.2f} GB, of which "
              f"{r['model_on_gpu_bytes'] / 1e9:.2f} GB would be on the GPU: host "
              f"{r['host_rss_bytes'] / 1e9:.2f} GB; {r['seconds']:.0f} s; "
              f"largest rise {rise['bytes'] / 1e9:.2f} GB in cell {rise['cell']} ({rise['first_line']!r})"
              + (f", {r['error']}" if r["error"] else ""))
    return {r["chapter"]: r for r in results}


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_under_the_gpu_profile_within_colabs_memory(chapters, name):
    result = chapters[name]
    assert result["error"] is None, result["error"]
    assert result["host_rss_bytes"] < PEAK_RSS_LIMIT, result
    assert result["peak_rss_bytes"] < COLAB_RAM, result
    text = _outputs(name)
    assert "profile gpu" in text and "REHEARSAL" in text, "every chapter prints the rehearsal"


def test_chapters_08_and_09_take_their_online_branch(chapters):
    filters = nbformat.read(OUT / "08_filters.ipynb", as_version=4)
    drawn = [cell for cell in filters.cells if cell.cell_type == "code"
             and "conv1 of torchvision's AlexNet" in cell.source
             and any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))]
    assert drawn, "chapter 08 drew no figure of torchvision's filters"
    assert "loaded torchvision's AlexNet" in _outputs("08_filters")
    assert "top-5 predictions of torchvision's AlexNet" in _outputs("09_feature_maps")
    for name in ("08_filters", "09_feature_maps"):
        assert "was not loaded" not in _outputs(name)
