"""The ``alexnet-tut`` command: help, version, and one-line errors."""

import subprocess
import sys

import pytest

from alexnet_tut import __version__
from alexnet_tut.cli import main


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "alexnet_tut", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_subcommand():
    result = run("--help")
    assert result.returncode == 0
    for command in ("data", "train", "bench"):
        assert command in result.stdout
    data_help = run("data", "--help").stdout
    for action in ("imagenette", "standin", "scan"):
        assert action in data_help


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_profile_is_a_one_line_error():
    from alexnet_tut.profiles import get_profile
    from alexnet_tut.errors import AlexnetTutError

    with pytest.raises(AlexnetTutError, match="unknown profile 'fast'"):
        get_profile("fast")


def test_bad_arguments_exit_2_without_traceback():
    result = run("train", "--data", "x")  # --out missing
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--out" in result.stderr


def test_data_scan_of_a_missing_folder_is_a_one_line_error(tmp_path):
    result = run("data", "scan", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: {tmp_path / 'nowhere'} does not exist" in result.stderr
