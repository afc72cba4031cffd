"""The command line against a table of careless and hostile input (issue 18).

Each row runs ``alexnet-tut`` in a fresh process, in a folder of its own
with its own HOME, data home and Keras home, offline, under the ``smoke``
profile, and asserts:

* the exit status (2 for usage and data errors, 0 where the input is handled);
* for an error, one line on stderr, ``error: ...`` matching the row's
  message (argparse's own usage errors: its last line), and no traceback;
* nothing written, changed or removed outside the folders the row names
  (``--out``, ``--dir``), and inside them only what the row allows.

TensorFlow's own start-up log lines (it prints them before its logging is
set up, whatever ``TF_CPP_MIN_LOG_LEVEL`` says), and libjpeg's complaint
about a file it cannot decode, are not the package's and are left out
before stderr is judged. Rows whose input must be caught before
TensorFlow loads take about a second; a few rows train or load data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from alexnet_tut import data
from datafiles import (SMALL, Server, cut_before_scan, make_tgz, python_sleeper, undecodable,
                       write_bad_files, write_lock)

TF_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
                      r"[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] |To enable the following instructions)")
LOCK = ".alexnet-tut-lock"
#: libjpeg writes its complaint about `datafiles.undecodable`'s files to stderr itself, once per
#: decode: TensorFlow's decoder, not the package, prints it.
LIBJPEG_SAYS = "Quantization table 0x03 was not defined"


@dataclass
class Case:
    """One kind of bad input: how to make it, the command, and what must come out."""

    kind: str
    setup: Callable[[Path, "World"], list[str]]  # makes the input under tmp, returns the arguments
    status: int = 2
    message: str = ""                            # a regex the error line must match
    may_change: tuple[str, ...] = ()             # folders under tmp the command may write in
    env: dict[str, str] = field(default_factory=dict)
    stdout: str = ""                             # a regex stdout must match (status 0)
    check: Callable[[Path], None] | None = None  # more to assert afterwards
    decoder_says: str = ""                       # what libjpeg prints itself for each bad file
    may_remove: tuple[str, ...] = ()             # the package's own files a refusal may remove


class World:
    """What many rows share: a small stand-in, and one smoke run of the command made once.

    The run trains on a copy of the stand-in with odd files in it (two that do
    not decode, a hidden folder, a link into the data folder): one row of
    the table judges that run, the rows about resuming copy its small files.
    """

    def __init__(self, base: Path):
        self.base = base
        self.standin = data.write_standin(base / "standin", **SMALL)
        self._run: tuple[Path, subprocess.CompletedProcess, dict, dict] | None = None

    def trained_run(self) -> Path:
        out, result, _, _ = self.training()
        assert result.returncode == 0, result.stderr[-3000:]
        return out

    def training(self) -> tuple[Path, subprocess.CompletedProcess, dict, dict]:
        """The run folder, the finished process, and snapshots of its data before and after."""
        if self._run is None:
            root = self.base / "trained-on"
            shutil.copytree(self.standin, root)
            (root / "standin.json").unlink()
            odd_files(root)
            out = self.base / "run"
            before = snapshot(self.base / "trained-on", self.standin)
            result = subprocess.run(
                [sys.executable, "-m", "alexnet_tut", "train", "--data", str(root),
                 "--out", str(out), "--epochs", "1"],
                capture_output=True, text=True, timeout=600, env=_environment(self.base / "home"))
            self._run = out, result, before, snapshot(self.base / "trained-on", self.standin)
        return self._run


def odd_files(root: Path) -> None:
    """Two images that pass the scan but do not decode, a hidden folder, a link into train/."""
    for path in [next((root / "train" / "cat").glob("*.JPEG")), next((root / "val" / "cat").glob("*.JPEG"))]:
        path.write_bytes(undecodable(path.read_bytes()))
    hidden = root / "train" / "coffee" / ".ipynb_checkpoints"
    hidden.mkdir()
    shutil.copy(next((root / "train" / "hopper").glob("*.JPEG")), hidden / "copy.JPEG")
    (root / "train" / "dup").symlink_to("cat")


def _environment(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ALEXNET_TUT_") and k not in ("TF_CONFIG", "KERAS_HOME")}
    return {**env, "HOME": str(home), "KERAS_HOME": str(home / ".keras"),
            "ALEXNET_TUT_DATA_HOME": str(home / "data"), "ALEXNET_TUT_PROFILE": "smoke",
            "ALEXNET_TUT_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONWARNINGS": "ignore::DeprecationWarning"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("world"))


# --------------------------------------------------------------------------
# Making the inputs
# --------------------------------------------------------------------------

def copy_of(world: World, tmp: Path, name: str = "data") -> Path:
    root = tmp / name
    shutil.copytree(world.standin, root)
    (root / "standin.json").unlink()
    return root


def run_folder_of(world: World, tmp: Path, *, weights: bool = True) -> Path:
    """The finished run's small files (settings, state, history) and a stand-in weights file."""
    run, out = world.trained_run(), tmp / "run"
    (out / "backup").mkdir(parents=True)
    for name in ("config.json", "history.csv", "report.json"):
        shutil.copy(run / name, out / name)
    shutil.copy(run / "backup" / "state.json", out / "backup" / "state.json")
    state = json.loads((run / "backup" / "state.json").read_text())
    if weights:
        (out / "backup" / state["weights"]).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 500)
    return out


def trained_data(world: World) -> Path:
    world.trained_run()
    return world.base / "trained-on"


def every_train_image(root: Path, change: Callable[[bytes], bytes]) -> Path:
    for path in (root / "train").rglob("*.JPEG"):
        path.write_bytes(change(path.read_bytes()))
    return root


def tgz_payload() -> bytes:
    return make_tgz({"train/a/x.JPEG": b"x" * 1000, "val/a/y.JPEG": b"y"})


_servers: list[Server] = []


def mirror_env(tmp: Path) -> dict[str, str]:
    server = Server({"/fast-ai-imageclas/imagenette2-160.tgz": tgz_payload()})
    _servers.append(server)
    return {"ALEXNET_TUT_MIRROR": server.base}


@pytest.fixture(autouse=True, scope="module")
def _close_servers():
    yield
    for server in _servers:
        server.close()


# Rows whose setup needs a live lock owner start it here and stop it afterwards.
_owners: list[subprocess.Popen] = []


def held_by_a_live_process(lock: Path) -> None:
    owner = python_sleeper()
    _owners.append(owner)
    write_lock(lock, owner.pid)


def imagenette(tmp: Path, *extra: str) -> list[str]:
    return ["data", "imagenette", "--size", "160px", "--dir", str(tmp / "dl"), *extra]


def train(data_dir: Path | str, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data_dir), "--out", str(out), *extra]


def _users_own_copy(tmp: Path, world: World) -> list[str]:
    mine = tmp / "dl" / "imagenette2-160"
    (mine / "train").mkdir(parents=True)
    (mine / "my_labels.csv").write_text("mine")
    return imagenette(tmp)


def _target_is(kind: str):
    def setup(tmp: Path, world: World) -> list[str]:
        (tmp / "dl").mkdir()
        target = tmp / "dl" / "imagenette2-160"
        if kind == "file":
            target.write_text("mine")
        else:
            target.symlink_to(tmp / "nowhere")
        return imagenette(tmp)
    return setup


def _archive_already_there(payload: Callable[[], bytes], *extra: str):
    def setup(tmp: Path, world: World) -> list[str]:
        (tmp / "dl").mkdir()
        (tmp / "dl" / "imagenette2-160.tgz").write_bytes(payload())
        return imagenette(tmp, *extra)
    return setup


def _stale_extraction(tmp: Path, world: World) -> list[str]:
    (tmp / "dl" / ".imagenette2-160-extracting-k1ll3d" / "imagenette2-160").mkdir(parents=True)
    return imagenette(tmp, "--trust-new-checksum")


def _download_in_progress(tmp: Path, world: World) -> list[str]:
    (tmp / "dl").mkdir()
    held_by_a_live_process(tmp / "dl" / ".imagenette2-160.alexnet-tut-lock")
    return imagenette(tmp)


def _foreign_out(tmp: Path, world: World) -> list[str]:
    (tmp / "project").mkdir()
    (tmp / "project" / "report.json").write_text("my own report")
    return train(world.standin, tmp / "project")


def _corrupt_config(tmp: Path, world: World) -> list[str]:
    out = run_folder_of(world, tmp)
    (out / "config.json").write_text((out / "config.json").read_text()[:40])
    return train(trained_data(world), out, "--resume")


def _out_in_use(tmp: Path, world: World) -> list[str]:
    (tmp / "run").mkdir()
    held_by_a_live_process(tmp / "run" / LOCK)
    return train(world.standin, tmp / "run")


def _stale_lock(tmp: Path, world: World) -> list[str]:
    """A lock whose owner was killed: taken over, so the next refusal is about the data."""
    (tmp / "run").mkdir()
    owner = python_sleeper()
    owner.kill()
    owner.wait()
    write_lock(tmp / "run" / LOCK, owner.pid)
    return train(tmp / "nowhere", tmp / "run")


def _started_run(*extra: str, data_dir: Callable[[Path, World], Path] | None = None,
                 damage: Callable[[Path], None] | None = None, weights: bool = True):
    def setup(tmp: Path, world: World) -> list[str]:
        out = run_folder_of(world, tmp, weights=weights)
        if damage:
            damage(out)
        folder = data_dir(tmp, world) if data_dir else trained_data(world)
        return train(folder, out, *extra)
    return setup


def _truncate_state(out: Path) -> None:
    state = out / "backup" / "state.json"
    state.write_text(state.read_text()[:30])


def _run_on_own_copy_with_a_class_removed(tmp: Path, world: World) -> list[str]:
    """The run's data folder at the same path, with one class removed since it was trained."""
    out = run_folder_of(world, tmp)
    root = copy_of(world, tmp)
    config = json.loads((out / "config.json").read_text())
    config["data"] = str(root.resolve())  # as if the run had been trained on this copy
    (out / "config.json").write_text(json.dumps(config))
    for split in ("train", "val"):
        shutil.rmtree(root / split / "tissue")
    return train(root, out, "--resume")


def _bad_scan_folder(tmp: Path, world: World) -> list[str]:
    root = copy_of(world, tmp)
    write_bad_files(root)
    (root / "train" / "dup").symlink_to("cat")
    path = next((root / "train" / "hopper").glob("*.JPEG"))
    path.write_bytes(path.read_bytes() + b"\0" * 5000)  # bytes after a whole JPEG: still used
    return ["data", "scan", str(root)]


def _same_train_and_val(tmp: Path, world: World) -> list[str]:
    root = copy_of(world, tmp)
    shutil.rmtree(root / "val")
    (root / "val").symlink_to("train")
    return ["data", "scan", str(root)]


def _without(split: str):
    def setup(tmp: Path, world: World) -> list[str]:
        root = copy_of(world, tmp)
        shutil.rmtree(root / split)
        return ["data", "scan", str(root)]
    return setup


def _no_class_folders(tmp: Path, world: World) -> list[str]:
    root = copy_of(world, tmp)
    for folder in (root / "val").iterdir():
        for image in folder.iterdir():
            image.rename(root / "val" / image.name)
        folder.rmdir()
    return ["data", "scan", str(root)]


def _a_file(tmp: Path, world: World) -> Path:
    (tmp / "file").write_text("")
    return tmp / "file"


def _all_cut_before_scan(command: str):
    def setup(tmp: Path, world: World) -> list[str]:
        root = every_train_image(copy_of(world, tmp), cut_before_scan)
        return ["data", "scan", str(root)] if command == "scan" else train(root, tmp / "run")
    return setup


def _unchanged(path: str, text: str):
    def check(tmp: Path) -> None:
        assert (tmp / path).read_text() == text
    return check


def _extracted(tmp: Path) -> None:
    root = tmp / "dl" / "imagenette2-160"
    assert (root / "val" / "a" / "y.JPEG").read_bytes() == b"y"
    assert not list((tmp / "dl").glob(".imagenette2-160-extracting-*"))


CASES = [
    # ---- the folder scan
    Case("scan: missing folder", lambda t, w: ["data", "scan", str(t / "nowhere")],
         message=r"nowhere does not exist \(expected an ImageNet-layout folder"),
    Case("scan: a file", lambda t, w: ["data", "scan", str(_a_file(t, w))], message="is not a folder"),
    Case("scan: no val/", _without("val"), message=r"has no val/ folder"),
    Case("scan: no train/", _without("train"), message=r"has no train/ folder"),
    Case("scan: flat val/, no class folders", _no_class_folders, message="has no class folders"),
    Case("scan: train/ and val/ the same folder", _same_train_and_val,
         message="train/ and val/ are the same folder"),
    Case("scan: every image cut before its scan", _all_cut_before_scan("scan"),
         message="holds no usable images: 36 files skipped"),
    Case("scan: bad files, links, bytes after a JPEG: counted skips", _bad_scan_folder, status=0,
         stdout=r"(?s)6 classes, 39 train images.*skipped: 6:.*train/dup: a link to train/cat.*"
                r"truncated JPEG"),
    Case("scan: one class, said in the singular", lambda t, w: _one_class(t), status=0,
         stdout=r": 1 class, 1 train image, 1 val image"),
    # ---- the download
    Case("imagenette: a folder of the user's own in the way", _users_own_copy,
         message="was not made by alexnet-tut.*nothing was changed",
         check=_unchanged("dl/imagenette2-160/my_labels.csv", "mine")),
    Case("imagenette: a file in the way", _target_is("file"), message="is a file, not a folder"),
    Case("imagenette: a dangling link in the way", _target_is("symlink"),
         message="is a symbolic link"),
    Case("imagenette: --dir is a file",
         lambda t, w: ["data", "imagenette", "--dir", str(_a_file(t, w))],
         message="is a file, not a folder: choose another --dir"),
    Case("imagenette: --dir under a file",
         lambda t, w: ["data", "imagenette", "--dir", str(_a_file(t, w) / "sub")],
         message="cannot create .*choose another --dir"),
    Case("imagenette: wrong checksum from the mirror", lambda t, w: imagenette(t),
         message="checksum mismatch for http://127.0.0.1:.*/fast-ai-imageclas/imagenette2-160.tgz: "
                 "expected md5 .*the file was removed", env={"mirror": "1"}),
    Case("imagenette: --trust-new-checksum through the mirror",
         lambda t, w: imagenette(t, "--trust-new-checksum"), status=0, may_change=("dl",),
         env={"mirror": "1"}, stdout=r"imagenette2-160\n$", check=_extracted),
    Case("imagenette: an unverified archive already there",
         _archive_already_there(lambda: make_tgz({"train/b/z.JPEG": b"z"})),
         message="is not the published archive.*left as it is"),
    Case("imagenette: random bytes as the archive",
         _archive_already_there(lambda: os.urandom(3000), "--trust-new-checksum"),
         message="not a readable tar archive.*left as it is"),
    Case("imagenette: a killed extraction's hidden folder", _stale_extraction, status=0,
         may_change=("dl",), env={"mirror": "1"}, check=_extracted),
    Case("imagenette: another download in progress", _download_in_progress,
         message=r"in use by process \d+"),
    Case("imagenette: the mirror does not answer", lambda t, w: imagenette(t),
         env={"ALEXNET_TUT_MIRROR": "http://127.0.0.1:9"},
         message="download of http://127.0.0.1:9/fast-ai-imageclas/imagenette2-160.tgz failed"),
    Case("imagenette: ALEXNET_TUT_MIRROR not a URL", lambda t, w: imagenette(t),
         env={"ALEXNET_TUT_MIRROR": "mirror.example:8080"}, message="is not a URL"),
    Case("imagenette: unknown --size", lambda t, w: ["data", "imagenette", "--size", "64px"],
         message="invalid choice: '64px'"),
    # ---- the stand-in
    Case("standin: a folder that is not empty",
         lambda t, w: (t.joinpath("full").mkdir(), t.joinpath("full", "mine.txt").write_text("m"),
                       ["data", "standin", str(t / "full")])[-1],
         message="not empty", check=_unchanged("full/mine.txt", "m")),
    Case("standin: under a file", lambda t, w: ["data", "standin", str(_a_file(t, w) / "s")],
         message="(?i)not a directory|cannot|file"),
    # ---- training: arguments
    Case("train: --out missing", lambda t, w: ["train", "--data", str(w.standin)],
         message="the following arguments are required: --out"),
    Case("train: --epochs 0", lambda t, w: train(w.standin, t / "run", "--epochs", "0"),
         message="--epochs must be a whole number of at least 1, got 0"),
    Case("train: --batch-size -1", lambda t, w: train(w.standin, t / "run", "--batch-size", "-1"),
         message="--batch-size must be a whole number of at least 1"),
    Case("train: --batch-size not a number",
         lambda t, w: train(w.standin, t / "run", "--batch-size", "lots"),
         message="invalid int value: 'lots'"),
    Case("train: unknown --profile", lambda t, w: train(w.standin, t / "run", "--profile", "huge"),
         message="invalid choice: 'huge'"),
    Case("train: ALEXNET_TUT_PROFILE unknown", lambda t, w: train(w.standin, t / "run"),
         env={"ALEXNET_TUT_PROFILE": "huge"}, message="unknown profile 'huge'"),
    Case("train: --batch-size 1000000000",
         lambda t, w: train(w.standin, t / "run", "--batch-size", "1000000000"),
         message="--batch-size 1,000,000,000 is larger than the training set \\(36 images\\): "
                 "choose at most 36"),
    # ---- training: the data
    Case("train: --data missing", lambda t, w: train(t / "nowhere", t / "run"),
         message="nowhere does not exist"),
    Case("train: --data a file", lambda t, w: train(_a_file(t, w), t / "run"),
         message="is not a folder"),
    Case("train: --data without val/", lambda t, w: train(_without("val")(t, w)[-1], t / "run"),
         message="has no val/ folder"),
    Case("train: every training image cut before its scan", _all_cut_before_scan("train"),
         message="holds no usable images"),
    Case("train: no training image decodes",
         lambda t, w: train(every_train_image(copy_of(w, t), undecodable), t / "run"),
         message="no training image .* could be decoded", decoder_says=LIBJPEG_SAYS),

    # ---- training: the run folder
    Case("train: --out under a file", lambda t, w: train(w.standin, _a_file(t, w) / "run"),
         message="cannot create the run folder .*choose another --out"),
    Case("train: --out is a file", lambda t, w: train(w.standin, _a_file(t, w)),
         message="is a file, not a folder"),
    Case("train: --out a folder of someone else's", _foreign_out,
         message="holds no alexnet-tut run \\(report.json\\)",
         check=_unchanged("project/report.json", "my own report")),
    Case("train: --out in use by another run", _out_in_use, message=r"is in use by process \d+"),
    Case("train: --out locked by a killed run (taken over)", _stale_lock,
         message="nowhere does not exist", may_remove=(f"run/{LOCK}",)),
    Case("train: a started run without --resume", _started_run(),
         message="already holds a training run: pass --resume"),
    Case("train: --resume with other settings", _started_run("--resume", "--variant", "one_tower"),
         message="started with variant='paper', not variant='one_tower'"),
    Case("train: --resume with a damaged config.json", _corrupt_config,
         message="config.json is damaged \\(not readable JSON"),
    Case("train: --resume with a truncated state.json", _started_run("--resume", damage=_truncate_state),
         message="state.json is damaged"),
    Case("train: --resume with its weights file missing", _started_run("--resume", weights=False),
         message="its weights file .* is missing: start over with a new --out"),
    Case("train: --resume with a damaged weights file", _started_run("--resume"),
         message=r"cannot resume from .*\.weights\.h5: the file is damaged", decoder_says=LIBJPEG_SAYS),
    Case("train: --resume on another folder with the same classes",
         _started_run("--resume", data_dir=lambda t, w: copy_of(w, t, "other")),
         message="it was trained on the data in .*trained-on, not .*other; pass --data"),
    Case("train: --resume on its folder with a class removed since",
         _run_on_own_copy_with_a_class_removed,
         message=r"started with 6 classes \(astronaut, cat, coffee, hopper, \.\.\.\), not 5 classes"),
]


def _one_class(tmp: Path) -> list[str]:
    from PIL import Image

    for split in ("train", "val"):
        (tmp / "one" / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp / "one" / split / "cat" / "a.JPEG")
    return ["data", "scan", str(tmp / "one")]


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every path under ``roots``: its kind and, for files, size and content hash."""
    seen = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(folder) / name
                if path.is_symlink():
                    seen[str(path)] = ("link", os.readlink(path))
                elif path.is_dir():
                    seen[str(path)] = ("dir",)
                else:
                    seen[str(path)] = ("file", hashlib.md5(path.read_bytes()).hexdigest())
    return seen


@pytest.mark.parametrize("case", CASES, ids=[case.kind for case in CASES])
def test_bad_input(case: Case, world: World, tmp_path: Path):
    env = _environment(tmp_path / "home")
    (tmp_path / "cwd").mkdir()
    args = case.setup(tmp_path, world)
    extra = dict(case.env)
    if extra.pop("mirror", None):
        extra.update(mirror_env(tmp_path))
    env.update(extra)
    before = snapshot(tmp_path, world.standin)
    try:
        result = subprocess.run([sys.executable, "-m", "alexnet_tut", *args], capture_output=True,
                                text=True, timeout=600, env=env, cwd=tmp_path / "cwd")
    finally:
        while _owners:
            owner = _owners.pop()
            owner.kill()
            owner.wait()
    after = snapshot(tmp_path, world.standin)

    stderr = [line for line in result.stderr.splitlines() if line and not TF_NOISE.match(line)
              and not (case.decoder_says and line == case.decoder_says)]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == case.status, (result.stdout[-2000:], result.stderr[-2000:])
    if case.status == 0:
        assert stderr == [], stderr
        assert re.search(case.stdout, result.stdout), result.stdout[-2000:]
    else:
        usage_error = bool(stderr) and stderr[0].startswith("usage:")
        error = stderr[-1] if usage_error else (stderr[0] if len(stderr) == 1 else stderr)
        assert isinstance(error, str) and error.startswith(
            "alexnet-tut" if usage_error else "error: "), stderr
        assert re.search(case.message, error), error
    allowed = tuple(str(tmp_path / name) for name in case.may_change)
    home = tmp_path / "home"
    libraries = {str(home / ".keras"), str(home / ".keras" / "keras.json"), str(home / ".config")}
    caches = (str(home / ".cache"), str(home / ".config" / "matplotlib"))
    changed = {path for path in before.keys() | after.keys()
               if before.get(path) != after.get(path) and not path.startswith(allowed)
               and path not in libraries and not path.startswith(caches)}  # Keras's, matplotlib's
    if case.status != 0:  # nothing lost, even where writing is allowed
        changed |= {path for path in before.keys() - after.keys()}
    changed -= {str(tmp_path / name) for name in case.may_remove if str(tmp_path / name) not in after}
    assert not changed, sorted(changed)
    if case.check:
        case.check(tmp_path)


def test_bad_input_a_run_on_odd_files_trains_and_counts_them(world: World):
    """The table's last row: the shared run itself (two images that do not decode, a hidden
    folder, a link): exit 0, both drops counted, nothing in the data folder changed."""
    out, result, before, after = world.training()
    stderr = [line for line in result.stderr.splitlines()
              if line and not TF_NOISE.match(line) and line != LIBJPEG_SAYS]
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert stderr == []
    assert re.search(r"(?s)note: 1 of 18 validation images passed the folder scan.*\nnote: 1 of 36 "
                     r"training images.*validation top-1", result.stdout), result.stdout[-2000:]
    assert before == after
    report = json.loads((out / "report.json").read_text())
    assert (report["undecodable_train"], report["undecodable_val"], report["num_classes"]) == (1, 1, 6)
