"""The book's structure: table of contents, Colab links, notebook anatomy.

These checks keep the website, GitHub and Colab pointing at the same files.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPO_URL = CONFIG["repository"]["url"]
REPO = REPO_URL.removeprefix("https://github.com/")
BRANCH = CONFIG["repository"]["branch"]


def toc_files() -> list[str]:
    files = [TOC["root"]]
    for part in TOC.get("parts", []):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [section["file"] for section in chapter.get("sections", [])]
    return files


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    listed = toc_files()
    assert sorted(f"notebooks/{nb.stem}" for nb in NOTEBOOKS) == sorted(
        f for f in listed if f.startswith("notebooks/")
    )
    for entry in listed:
        assert (ROOT / f"{entry}.ipynb").exists() or (ROOT / f"{entry}.md").exists(), entry


def test_config_points_colab_at_the_repository_main_branch():
    assert REPO_URL.startswith("https://github.com/") and REPO.count("/") == 1
    assert BRANCH == "main"  # Jupyter Book's default, master, would give dead links
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["repository"]["path_to_book"] == ""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_colab_badge_and_install_cell_for_this_repository(notebook):
    first = source(cells(notebook)[0])
    badge = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{notebook.name}"
    assert badge in first
    install = next(c for c in cells(notebook) if c["cell_type"] == "code")
    assert "google.colab" in source(install)
    assert f"git+{REPO_URL}@{BRANCH}" in source(install)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_anatomy(notebook):
    text = "\n".join(source(c) for c in cells(notebook) if c["cell_type"] == "markdown")
    assert len(re.findall(r"^# ", text, flags=re.M)) == 1, "exactly one H1 title"
    for heading in ("What you will learn", "Takeaways", "Exercises"):
        assert re.search(rf"^#+ {heading}", text, flags=re.M), heading
    assert re.search(r"cost|takes", text, flags=re.I), "say what it costs to run"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_executed(notebook):
    code = [c for c in cells(notebook) if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] for c in code), "run `make notebooks`"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_ignores_most_of_its_outputs(notebook):
    code = [c for c in cells(notebook) if c["cell_type"] == "code"]
    ignored = [c for c in code if "NBVAL_IGNORE_OUTPUT" in source(c)]
    assert len(ignored) <= len(code) / 2


def test_bibliography_has_the_sources_the_book_cites():
    bib = (ROOT / "book/references.bib").read_text()
    for key in ("krizhevsky2012imagenet", "zeiler2013visualizing", "krizhevsky2014weird",
                "howard2019imagenette", "jia2014caffe", "marcel2010torchvision",
                "torchvision2024alexnet", "bvlc2014alexnet"):
        assert f"{{{key}," in bib
