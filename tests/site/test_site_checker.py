"""The site checker catches what it is for: each failure mode shown once on a broken page.

Each test copies a built page (the first notebook of the TOC) into a copy of the site, breaks
it in one way, and runs the same `sitecheck.visit` as the real pages get: it must report a
missing figure, a Colab link to a notebook that does not exist, a JavaScript error, and a
kernel-free explorer whose control no longer changes the picture. The unbroken explorer
passes, which shows the explorer's own script working in the browser.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import sitecheck
from alexnet_tut.viz import static_views

PAGES = sitecheck.toc_pages()
SOURCE = next(page for page in PAGES if page.is_notebook)


def write_copy(broken_site, name: str, change) -> str:
    """``change(html)`` applied to a copy of SOURCE's built page, saved beside it; its URL."""
    folder, base = broken_site
    text = (folder / SOURCE.html).read_text(encoding="utf-8")
    changed = change(text)
    assert changed != text, "the change did not apply to the page"
    relative = str((sitecheck.Path(SOURCE.html).parent / f"{name}.html").as_posix())
    (folder / relative).write_text(changed, encoding="utf-8")
    return sitecheck.page_url(base, relative)


def after_title(text: str, insert: str) -> str:
    """``insert`` at the start of the page's article (the first ``</h1>`` is print-only)."""
    article = '<article class="bd-article">'
    return text.replace(article, article + "\n" + insert, 1)


def check(browser, url, colab):
    return sitecheck.visit(browser, url, SOURCE, colab=colab)


def test_checker_reports_a_missing_figure(browser, broken_site, colab):
    def break_figure(text):
        local = re.search(r'src="(\.\./_images/[^"]+)"', text)
        if local:  # the page's first figure now points at a file that is not there
            return text.replace(local.group(0), 'src="../_images/no-such-figure.png"', 1)
        return after_title(text, '<img alt="a figure" src="../_images/no-such-figure.png">')

    result = check(browser, write_copy(broken_site, "broken-figure", break_figure), colab)
    assert any(p.startswith("image not loaded") and "no-such-figure.png" in p
               for p in result.problems), result.problems


def test_checker_reports_a_colab_link_to_a_notebook_that_does_not_exist(browser, broken_site,
                                                                          colab):
    real = SOURCE.docname + ".ipynb"
    result = check(browser, write_copy(
        broken_site, "broken-colab",
        lambda text: text.replace(f"/blob/{colab.branch}/{real}",
                                  f"/blob/{colab.branch}/notebooks/no_such_chapter.ipynb")), colab)
    assert any("does not exist in the repository: notebooks/no_such_chapter.ipynb" in p
               for p in result.problems), result.problems
    assert any(p.startswith("launch button should open") for p in result.problems)


def test_checker_reports_a_javascript_error(browser, broken_site, colab):
    script = '<script>window.addEventListener("load", () => { null.deliberate(); });</script>'
    result = check(browser, write_copy(
        broken_site, "broken-script", lambda text: text.replace("</body>", script + "</body>", 1)),
        colab)
    assert any(p.startswith("JavaScript error") and "deliberate" in p
               for p in result.problems), result.problems


@pytest.fixture(scope="module")
def demo_explorer() -> str:
    """A small explorer: three colours × two sizes of a square, a menu and a slider."""
    views = {}
    for colour, rgb in {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 70, 220)}.items():
        for size in ("small", "large"):
            image = np.full((40, 60, 3), 255, dtype="uint8")
            side = 10 if size == "small" else 30
            image[20 - side // 2:20 + side // 2, 30 - side // 2:30 + side // 2] = rgb
            views[(colour, size)] = image
    return static_views.explorer_html(views, controls=("colour", "size"), sliders=("size",),
                                      image_format="png", title="a demo explorer").data


def test_kernel_free_explorer_changes_its_picture_in_the_browser(browser, broken_site, colab,
                                                                demo_explorer):
    result = check(browser, write_copy(broken_site, "explorer",
                                       lambda text: after_title(text, demo_explorer)), colab)
    assert result.explorers == 1
    assert not result.problems, result.problems


def test_checker_reports_an_explorer_whose_control_does_not_change_the_picture(
        browser, broken_site, colab, demo_explorer):
    # The script still runs, but no longer puts the chosen view into the picture.
    broken = demo_explorer.replace("picture.src = ", "picture.dataset.src = ")
    assert broken != demo_explorer
    result = check(browser, write_copy(broken_site, "broken-explorer",
                                       lambda text: after_title(text, broken)), colab)
    assert any("turning its 'colour' control did not change the picture" in p
               for p in result.problems), result.problems
    assert any("'size'" in p for p in result.problems), result.problems


def test_checker_reports_a_broken_link_and_a_missing_anchor(broken_site):
    folder, _ = broken_site
    write_copy(broken_site, "broken-links", lambda text: after_title(
        text, '<a href="no_such_page.html">gone</a> <a href="#no-such-anchor">nowhere</a>'))
    page = (sitecheck.Path(SOURCE.html).parent / "broken-links.html").as_posix()
    problems = sitecheck.link_problems(folder, [page])
    assert any("missing file" in p and "no_such_page.html" in p for p in problems), problems
    assert any("missing anchor #no-such-anchor" in p for p in problems), problems


def test_checker_reports_math_left_raw_when_mathjax_comes_from_a_cdn(browser, broken_site, colab):
    # The symptom this book had: MathJax from a CDN, so offline the reader saw raw \( … \).
    result = check(browser, write_copy(broken_site, "broken-math", lambda text: re.sub(
        r'src="[^"]*mathjax/tex-chtml-full\.js[^"]*"',
        'src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"', text)), colab)
    assert any(p.startswith("math not typeset") for p in result.problems), result.problems
    assert any(p.startswith("script from another host") for p in result.problems)
