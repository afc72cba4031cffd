"""The data policy: which folder a run uses, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from alexnet_tut import data
from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.profiles import PROFILES
from datafiles import SMALL

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return data.write_standin(tmp_path_factory.mktemp("s") / "standin", seed=0, **SMALL)


def test_resolve_source_order(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_TUT_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALEXNET_TUT_OFFLINE", "1")
    monkeypatch.delenv("ALEXNET_TUT_DATA", raising=False)
    smoke, cpu = PROFILES["smoke"], PROFILES["cpu"]

    source = data.resolve_source(smoke)
    assert source.kind == "standin" and source.root == tmp_path / "home" / data.STANDIN_DIRNAME
    assert source.description.startswith(data.STANDIN_DESCRIPTION)
    assert data.resolve_source(smoke).root == source.root  # reused, not rewritten

    monkeypatch.setenv("ALEXNET_TUT_DATA", str(standin))
    assert data.resolve_source(smoke).kind == "standin"  # smoke ignores the variable
    assert data.resolve_source(cpu).root == standin
    assert data.resolve_source(cpu, data_dir=tmp_path).kind == "ALEXNET_TUT_DATA"
    monkeypatch.setenv("ALEXNET_TUT_DATA", str(tmp_path / "missing"))
    with pytest.raises(AlexnetTutError, match="ALEXNET_TUT_DATA"):
        data.resolve_source(cpu)

    monkeypatch.delenv("ALEXNET_TUT_DATA")
    assert "ALEXNET_TUT_OFFLINE is set" in data.resolve_source(cpu).description
    nette = tmp_path / "home" / "imagenette2-160"
    nette.mkdir()
    (nette / ".alexnet-tut-complete").write_text("{}")
    source = data.resolve_source(cpu)
    assert (source.kind, source.root) == ("imagenette", nette)
