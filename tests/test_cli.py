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


def test_a_bug_prints_its_traceback_and_one_line_asking_for_a_report(monkeypatch, capsys):
    from alexnet_tut import cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_dispatch", broken)
    assert cli.main(["data", "scan", "x"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err
    assert err.strip().splitlines()[-1].startswith("this is a bug in alexnet-tut")
    assert "https://github.com/alexnet-tut/alexnet-tut/issues" in err


def test_a_refused_read_or_write_is_one_line_with_status_2(monkeypatch, capsys):
    from alexnet_tut import cli

    def refused(args):
        raise PermissionError(13, "Permission denied", "/data/read-only/x")

    monkeypatch.setattr(cli, "_dispatch", refused)
    assert cli.main(["data", "scan", "x"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("error: Permission denied: /data/read-only/x")


LIGHT = """
import sys
from alexnet_tut import cli, train
code = cli.main(sys.argv[1:])
heavy = sorted(m for m in ("tensorflow", "keras", "torch") if m in sys.modules)
print("loaded:", heavy, code)
"""


def test_starting_the_command_and_its_early_refusals_load_no_tensorflow(tmp_path):
    """`--help`, `data ...` and a `train` refused for its run folder answer in about a second."""
    (tmp_path / "file").write_text("")
    for args in (["data", "scan", str(tmp_path)],
                 ["data", "imagenette", "--dir", str(tmp_path / "file")],
                 ["train", "--data", str(tmp_path), "--out", str(tmp_path / "file" / "run")]):
        result = subprocess.run([sys.executable, "-c", LIGHT, *args], capture_output=True,
                                text=True, timeout=120)
        assert result.stdout.strip().splitlines()[-1] == "loaded: [] 2", (args, result.stderr)
