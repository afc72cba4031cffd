"""The built website as a reader uses it, page by page, in headless Chromium.

Every page of the TOC is opened offline (requests to other hosts refused) and checked by
`sitecheck.visit`: no console or JavaScript errors, no failed request to the site, every
image loaded with alt text, Colab links that open this repository's notebooks, MathJax served
with the site and every formula typeset, code cells that fit at 1280 and 390 px, a title, a
description and a favicon, figures on a light background in dark mode, the download button,
every kernel-free explorer's controls, and no page over 5 MB. Screenshots of the first, the
first notebook and the last notebook page (light, dark, 390 px) go to _build/screenshots/.
"""

from __future__ import annotations

import hashlib
import re

import pytest

import sitecheck

PAGES = sitecheck.toc_pages()
NOTEBOOKS = [page for page in PAGES if page.is_notebook]
# The screenshots: the first page, and the first and last notebooks.
KEY_PAGES = {PAGES[0].docname}
if NOTEBOOKS:
    KEY_PAGES |= {NOTEBOOKS[0].docname, NOTEBOOKS[-1].docname}


def test_every_toc_page_was_built(site):
    missing = [page.html for page in PAGES if not (site / page.html).is_file()]
    assert not missing, f"pages in _toc.yml missing from _build/html: {missing}; run `make book`"


@pytest.mark.parametrize("page", PAGES, ids=[page.docname for page in PAGES])
def test_page_works_offline_as_a_reader_uses_it(browser, site_url, colab, visits, page):
    shots = sitecheck.SCREENSHOTS if page.docname in KEY_PAGES else None
    result = sitecheck.visit(browser, sitecheck.page_url(site_url, page.html), page,
                             colab=colab, screenshots=shots)
    visits[page.docname] = result
    assert not result.problems, f"{page.html}:\n" + "\n".join(result.problems)


def test_no_broken_internal_link_or_anchor(site):
    pages = [page.html for page in PAGES] + ["search.html", "genindex.html"]
    problems = sitecheck.link_problems(site, [p for p in pages if (site / p).is_file()])
    assert not problems, "\n".join(problems)


def test_every_page_with_a_widget_also_has_a_kernel_free_explorer(site):
    # An ipywidgets view needs a running kernel, and the website has none: a page that shows
    # one must also show its kernel-free version (alexnet_tut.viz.static_views).
    lacking = sitecheck.pages_with_widgets(site, [page.html for page in PAGES])
    assert not lacking, (f"pages with an ipywidgets view and no static explorer: {lacking}; "
                         "add static_views.explorer_html(...) beside the live explorer")


def test_search_finds_local_response_normalization(browser, site_url):
    context = sitecheck.new_context(browser)
    try:
        page = context.new_page()
        page.goto(sitecheck.page_url(site_url, "search.html?q=local+response+normalization"))
        results = page.locator("#search-results ul.search li")
        results.first.wait_for(timeout=30000)
        linked = results.locator("a").first.get_attribute("href")
        assert results.count() >= 1 and linked
    finally:
        context.close()


def test_mathjax_copy_matches_its_provenance():
    # book/_static/mathjax holds MathJax's files unchanged; PROVENANCE.txt lists their hashes.
    folder = sitecheck.REPO / "book" / "_static" / "mathjax"
    provenance = (folder / "PROVENANCE.txt").read_text()
    listed = re.findall(r"^([0-9a-f]{64})  \./(\S+)$", provenance, re.MULTILINE)
    assert any(name == "tex-chtml-full.js" for _, name in listed)
    for digest, name in listed:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
