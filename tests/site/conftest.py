"""Fixtures for the website's browser tests (`make test-site`, after `make book`).

The built site (`_build/html`) is served on 127.0.0.1 by a thread of this process and opened
in Debian's Chromium (installed by tests/site/install_chromium.sh), driven by Playwright for
Python. Every request to another host is refused (sitecheck.new_context): the site must work
without a network.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

import sitecheck


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the base class's signature
        pass


def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 (a free port) from a thread; returns (base URL, stop)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}/", stop


@pytest.fixture(scope="session")
def site() -> Path:
    if not (sitecheck.SITE / "index.html").is_file():
        pytest.fail("no built website in _build/html: run `make book` first")
    return sitecheck.SITE


@pytest.fixture(scope="session")
def site_url(site):
    url, stop = serve(site)
    yield url
    stop()


@pytest.fixture(scope="session")
def broken_site(site, tmp_path_factory):
    """A copy of the built site, served on its own port, for deliberately broken pages."""
    copy = tmp_path_factory.mktemp("broken") / "html"
    shutil.copytree(site, copy)
    url, stop = serve(copy)
    yield copy, url
    stop()


def _chromium() -> str:
    for candidate in sitecheck.CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no Chromium at /usr/bin/chromium: run `bash tests/site/install_chromium.sh`")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), headless=True,
                                              args=list(sitecheck.CHROMIUM_FLAGS))
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def colab():
    return sitecheck.colab_config()


@pytest.fixture(scope="session")
def visits():
    """Every page's visit, by docname, for the page-weight report written at the end."""
    found: dict[str, sitecheck.Visit] = {}
    yield found
    if found:
        report = sitecheck.REPO / "_build" / "site-test" / "page-weight.md"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(sitecheck.weight_table(found))
