"""What the website's browser tests check on a page, as functions that return the problems found.

A page is opened in a fresh browser context (no cache, so its weight is measured cold) in
which every request to a host other than 127.0.0.1 is refused, as on a machine without a
network. `visit` then checks it as a reader would use it and returns a `Visit`: the problems
(each one line saying what and where) and the page's weight and load time. The tests call
it on every page of the TOC, and on deliberately broken copies of built pages to show that
each problem is caught. `link_problems` checks internal links and anchors from the HTML.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html.parser
import json
import posixpath
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "_build" / "html"
SCREENSHOTS = REPO / "_build" / "screenshots"

#: Debian's binary; /usr/bin/chromium is a shell wrapper around it.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
#: Headless Chromium on a machine whose closed network refuses its background connections.
#: Playwright gives every launch a fresh profile (its own --user-data-dir).
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage")

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
#: No page may weigh more: its HTML and the figures it loads (the theme's and MathJax's
#: files, the same for every page, are cached by the reader's browser after the first).
MAX_PAGE_BYTES = 5_000_000
#: In dark mode at least this share of a figure's outermost pixels must be light: a figure
#: drawn on white passes even where a photo touches an edge; one drawn on transparent fails.
MIN_FIGURE_BORDER_LIGHTNESS = 0.5


# ------------------------------------------------------------------ the book's own files


@dataclasses.dataclass(frozen=True)
class TocPage:
    """One page of the TOC: its docname (``notebooks/01_the_paper``) and its source file."""

    docname: str
    source: Path

    @property
    def html(self) -> str:
        return self.docname + ".html"

    @property
    def is_notebook(self) -> bool:
        return self.source.suffix == ".ipynb"

    @property
    def slug(self) -> str:
        return self.docname.replace("/", "-")


def toc_pages(repo: Path = REPO) -> list[TocPage]:
    """Every page in ``_toc.yml``, in reading order (the root first)."""
    toc = yaml.safe_load((repo / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    pages = []
    for name in names:
        name = str(Path(name).with_suffix("")) if Path(name).suffix in (".md", ".ipynb") else name
        sources = [repo / f"{name}{suffix}" for suffix in (".ipynb", ".md", ".rst")]
        found = next((s for s in sources if s.exists()), sources[1])
        pages.append(TocPage(name, found))
    return pages


@dataclasses.dataclass(frozen=True)
class Colab:
    """Where the book's Colab links must point, from ``_config.yml``."""

    colab_url: str
    owner_repo: str
    branch: str
    path_to_book: str

    def url_for(self, page: TocPage) -> str:
        path = posixpath.join(self.path_to_book, page.docname + ".ipynb") if self.path_to_book \
            else page.docname + ".ipynb"
        return f"{self.colab_url}/github/{self.owner_repo}/blob/{self.branch}/{path}"

    def repo_path(self, url: str) -> str | None:
        """The repository path a Colab link opens, or None if it is for another repo or branch."""
        prefix = f"{self.colab_url}/github/{self.owner_repo}/blob/{self.branch}/"
        return url[len(prefix):] if url.startswith(prefix) else None


def colab_config(repo: Path = REPO) -> Colab:
    config = yaml.safe_load((repo / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    owner_repo = "/".join(urlsplit(url).path.strip("/").split("/")[:2])
    return Colab(config["launch_buttons"]["colab_url"].rstrip("/"), owner_repo,
                 config["repository"].get("branch", "main"),
                 (config["repository"].get("path_to_book") or "").strip("/"))


# ------------------------------------------------------------------------------ a visit


@dataclasses.dataclass
class Visit:
    """What one visit found: problems (one line each) and the page's cold weight."""

    url: str
    problems: list[str] = dataclasses.field(default_factory=list)
    bytes: int = 0  # the page's own: HTML and what only it loads (figures)
    html_bytes: int = 0
    shared_bytes: int = 0  # the site's files every page loads (theme, MathJax), cached once
    requests: int = 0
    load_ms: float = 0.0
    explorers: int = 0


def is_local(url: str) -> bool:
    host = urlsplit(url).hostname
    return url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost")


def new_context(browser, *, viewport=DESKTOP, color_scheme="light"):
    """A fresh context (empty cache) that refuses every request to another host."""
    context = browser.new_context(viewport=viewport, color_scheme=color_scheme,
                                  accept_downloads=True)

    def route(r):
        if is_local(r.request.url):
            r.continue_()
        else:
            r.abort("internetdisconnected")

    context.route("**/*", route)
    return context


def open_page(context, url: str, visit: Visit):
    """Open ``url``, recording console errors, page errors and failed local requests."""
    page = context.new_page()

    def on_console(message):
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        # A refused request to another host logs "Failed to load resource"; offline is the
        # point of these tests, and the request itself is checked below.
        if message.text.startswith("Failed to load resource") and where and not is_local(where):
            return
        visit.problems.append(f"console error: {message.text[:200]} ({where or 'page'})")

    def on_failed(request):
        if is_local(request.url):
            visit.problems.append(f"request failed: {short(request.url)} ({request.failure})")
        elif request.resource_type not in ("image", "media"):
            # The site must work offline: only pictures may come from elsewhere (with a
            # text fallback); scripts, styles and fonts are served with it.
            visit.problems.append(f"{request.resource_type} from another host: {short(request.url)}")

    def on_response(response):
        if is_local(response.url) and response.status >= 400:
            visit.problems.append(f"HTTP {response.status} for {short(response.url)}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: visit.problems.append(f"JavaScript error: {error}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.goto(url, wait_until="load")
    settle(page)
    return page


def settle(page) -> None:
    """Wait for MathJax's typesetting, the requests it starts (fonts), and every image."""
    page.evaluate("""() => (window.MathJax && MathJax.startup && MathJax.startup.promise)
                           ? MathJax.startup.promise.then(() => true) : false""")
    page.wait_for_load_state("networkidle")
    page.evaluate(WAIT_FOR_IMAGES_JS)


def short(url: str, n: int = 120) -> str:
    return url if len(url) <= n else url[:n] + "…"


WAIT_FOR_IMAGES_JS = """async () => {
  const images = Array.from(document.images);
  images.forEach(img => { if (img.loading === "lazy") { img.loading = "eager"; } });
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done, {once: true});
    img.addEventListener("error", done, {once: true});
    setTimeout(done, 10000);
  })));
  await new Promise(done => setTimeout(done, 50));  // error handlers (the badge's fallback)
}"""

IMAGES_JS = """() => Array.from(document.images).map(img => ({
  src: img.getAttribute("src") || "", alt: img.getAttribute("alt"),
  width: img.naturalWidth, complete: img.complete}))"""


def image_problems(page) -> list[str]:
    problems = []
    for img in page.evaluate(IMAGES_JS):
        where = short(img["src"], 80)
        if not img["complete"] or img["width"] == 0:
            problems.append(f"image not loaded: {where}")
        if not (img["alt"] or "").strip():
            problems.append(f"image without alt text: {where}")
    return problems


LINKS_JS = """() => Array.from(document.querySelectorAll("a[href]")).map(a => ({
  href: a.href, download: a.getAttribute("download"),
  classes: a.className,
  // Bootstrap's tooltips move a button's title into data-bs-original-title.
  title: a.getAttribute("title") || a.getAttribute("data-bs-original-title") || ""}))"""


def colab_problems(page, toc_page: TocPage, colab: Colab, repo: Path) -> list[str]:
    """Every Colab link opens a file of this repository and branch; a notebook page's
    launch button opens that very notebook."""
    problems = []
    links = page.evaluate(LINKS_JS)
    for link in links:
        href = link["href"]
        if not href.startswith(colab.colab_url + "/"):
            continue
        path = colab.repo_path(href)
        if path is None:
            problems.append(f"Colab link to another repository or branch: {href}")
        elif not (repo / unquote(path)).is_file():
            problems.append(f"Colab link to a file that does not exist in the repository: {path}")
    if toc_page.is_notebook:
        launch = [link["href"] for link in links if link["title"] == "Launch on Colab"]
        expected = colab.url_for(toc_page)
        if launch != [expected]:
            problems.append(f"launch button should open {expected}, found {launch or 'none'}")
    return problems


def download_problems(page, toc_page: TocPage) -> list[str]:
    """A notebook page's download button saves its .ipynb (a notebook, not a web page)."""
    if not toc_page.is_notebook:
        return []
    button = page.locator("a.btn-download-source-button")
    if button.count() != 1:
        return [f"expected one download button, found {button.count()}"]
    href = button.get_attribute("href") or ""
    if not href.endswith(".ipynb") or button.get_attribute("download") is None:
        return [(f"the download button should download the .ipynb, its link is {href!r} "
                 f"with download={button.get_attribute('download')!r}")]
    with page.expect_download(timeout=15000) as info:
        button.evaluate("a => a.click()")
    download = info.value
    try:
        notebook = json.loads(Path(download.path()).read_text())
    except (OSError, ValueError) as error:
        return [f"the downloaded {download.suggested_filename} is not a notebook: {error}"]
    expected = Path(toc_page.docname).name + ".ipynb"
    if download.suggested_filename != expected or "cells" not in notebook:
        return [(f"downloaded {download.suggested_filename} "
                 f"({len(notebook.get('cells', []))} cells), expected {expected}")]
    return []


MATH_JS = r"""() => {
  const math = Array.from(document.querySelectorAll("span.math, div.math"));
  const text = Array.from(document.querySelectorAll("article p, article li"))
    .filter(el => !el.closest("pre, code, .highlight"))
    .map(el => el.textContent).join("\n");
  const script = document.querySelector("script[src*='mathjax']");
  return {
    count: math.length,
    raw: math.filter(el => !el.querySelector("mjx-container")).slice(0, 3)
             .map(el => el.textContent.slice(0, 60)),
    errors: Array.from(document.querySelectorAll("mjx-merror")).slice(0, 3)
             .map(el => el.textContent.slice(0, 60)),
    dollars: (text.match(/\$[^$\n]*[\\^_{}][^$\n]*\$/g) || []).slice(0, 3),
    src: script ? script.src : null,
    version: window.MathJax && window.MathJax.version,
  };
}"""


def math_problems(page) -> list[str]:
    """Every formula typeset by MathJax served with the site; no `$…$` left unparsed."""
    math = page.evaluate(MATH_JS)
    problems = [f"unparsed math in the text: {d!r}" for d in math["dollars"]]
    if math["count"]:
        if not math["src"] or not is_local(math["src"]):
            problems.append(f"MathJax is not served with the site: {math['src']}")
        problems += [f"math not typeset: {raw!r}" for raw in math["raw"]]
        problems += [f"MathJax error: {error!r}" for error in math["errors"]]
    return problems


CODE_JS = """() => Array.from(document.querySelectorAll(
    "div.cell_input pre, div.highlight-python pre, div.highlight-ipython3 pre"))
  .filter(pre => pre.clientWidth > 0 && pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => pre.textContent.split("\\n")[0].slice(0, 60))"""


def code_problems(page, width: int) -> list[str]:
    """Code cells fit their column: no sideways scrolling to read a line."""
    wide = page.evaluate(CODE_JS)
    problems = [f"code cell scrolls sideways at {width} px: {line!r}…" for line in wide[:3]]
    if len(wide) > 3:
        problems.append(f"…and {len(wide) - 3} more code cells scroll sideways at {width} px")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:
        problems.append(f"the page is {overflow} px wider than a {width} px screen")
    return problems


META_JS = """() => ({
  title: document.title,
  description: (document.querySelector("meta[name=description]") || {}).content || "",
  ogTitle: (document.querySelector("meta[property='og:title']") || {}).content || "",
  icon: (document.querySelector("link[rel~=icon]") || {}).href || "",
})"""


def meta_problems(page) -> list[str]:
    """A title, a description and Open Graph tags for link previews, and a favicon."""
    meta = page.evaluate(META_JS)
    problems = [f"no {name} for link previews" for name in ("title", "description", "ogTitle")
                if not meta[name].strip()]
    if not meta["icon"]:
        problems.append("no favicon")
    else:
        status = page.evaluate("url => fetch(url).then(r => r.status, () => 0)", meta["icon"])
        if status != 200:
            problems.append(f"favicon {meta['icon']} answers HTTP {status}")
    return problems


DARK_FIGURES_JS = """() => {
  function background(el) {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor.match(/[\\d.]+/g).map(Number);
      if (c.length < 4 || c[3] > 0) { return c.slice(0, 3); }
    }
    return [255, 255, 255];
  }
  return Array.from(document.querySelectorAll("article img, .static-explorer img"))
    .filter(img => img.naturalWidth > 0 && img.getBoundingClientRect().width > 0)
    .map(img => {
      // The outermost ring of pixels, at (up to) natural size, over the background the
      // image sits on: its share of light pixels.
      const scale = Math.min(1, 1600 / Math.max(img.naturalWidth, img.naturalHeight));
      const w = Math.max(2, Math.round(img.naturalWidth * scale));
      const h = Math.max(2, Math.round(img.naturalHeight * scale));
      const canvas = document.createElement("canvas");
      canvas.width = w; canvas.height = h;
      const g = canvas.getContext("2d"), bg = background(img);
      g.fillStyle = `rgb(${bg[0]}, ${bg[1]}, ${bg[2]})`;
      g.fillRect(0, 0, w, h);
      g.drawImage(img, 0, 0, w, h);
      const rows = [g.getImageData(0, 0, w, 1), g.getImageData(0, h - 1, w, 1),
                    g.getImageData(0, 0, 1, h), g.getImageData(w - 1, 0, 1, h)];
      let light = 0, count = 0;
      rows.forEach(row => { for (let i = 0; i < row.data.length; i += 4) {
        const y = (0.2126 * row.data[i] + 0.7152 * row.data[i + 1] + 0.0722 * row.data[i + 2]) / 255;
        light += y > 0.75 ? 1 : 0; count++;
      } });
      return {src: (img.getAttribute("src") || "").slice(0, 80), lightness: light / count};
    });
}"""


def dark_mode_problems(page) -> list[str]:
    """In dark mode every figure still sits on a light background (its text is dark)."""
    page.evaluate("""() => { document.documentElement.dataset.theme = "dark";
                             document.documentElement.dataset.mode = "dark"; }""")
    page.wait_for_timeout(100)
    return [f"figure on a dark background in dark mode ({figure['lightness']:.0%} of its "
            f"border light): {figure['src']}"
            for figure in page.evaluate(DARK_FIGURES_JS)
            if figure["lightness"] < MIN_FIGURE_BORDER_LIGHTNESS]


def light_mode(page) -> None:
    page.evaluate("""() => { document.documentElement.dataset.theme = "light";
                             document.documentElement.dataset.mode = "light"; }""")


WEIGHT_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const local = performance.getEntriesByType("resource")
    .filter(r => r.name.startsWith(location.origin));
  // The theme, MathJax and the search index are the same file on every page: a reader's
  // browser fetches them once. The rest (HTML, figures) is this page's own.
  const shared = r => new URL(r.name).pathname.includes("/_static/")
                      || new URL(r.name).pathname.endsWith("/searchindex.js");
  const sum = rs => rs.reduce((total, r) => total + r.encodedBodySize, 0);
  return {html: nav.encodedBodySize, load: nav.loadEventEnd - nav.startTime, count: local.length,
          own: nav.encodedBodySize + sum(local.filter(r => !shared(r))),
          shared: sum(local.filter(shared))};
}"""


def measure(page, visit: Visit) -> None:
    """The page's weight, cold: its own bytes (HTML, figures) and the site's shared files."""
    weight = page.evaluate(WEIGHT_JS)
    visit.bytes, visit.html_bytes = int(weight["own"]), int(weight["html"])
    visit.shared_bytes = int(weight["shared"])
    visit.requests, visit.load_ms = int(weight["count"]) + 1, float(weight["load"])
    if visit.bytes > MAX_PAGE_BYTES:
        visit.problems.append(f"the page weighs {visit.bytes / 1e6:.1f} MB (HTML and figures), "
                              f"over {MAX_PAGE_BYTES / 1e6:.0f} MB")


PICTURE_JS = """img => img.decode().then(() => img.naturalWidth, () => 0)"""


def explorer_problems(page) -> tuple[int, list[str]]:
    """Turn every control of every kernel-free explorer; the picture must change each time."""
    problems = []
    explorers = page.locator(".static-explorer").all()
    for number, root in enumerate(explorers, start=1):
        picture = root.locator("img.static-explorer-view")
        controls = root.locator("[data-control]").all()
        if picture.count() != 1 or not controls:
            problems.append(f"explorer {number} has no picture or no controls")
            continue
        for control in controls:
            name = control.evaluate("el => el.closest('label').textContent.trim().split(/\\s/)[0]")
            tag = control.evaluate("el => el.tagName.toLowerCase()")
            current = control.input_value()
            if tag == "select":
                values = [o.get_attribute("value") for o in control.locator("option").all()]
            else:
                values = [str(v) for v in range(int(control.get_attribute("min") or 0),
                                                int(control.get_attribute("max") or 0) + 1)]
            others = [v for v in values if v != current]
            if not others:
                continue  # one value: nothing to turn
            before = digest(picture.get_attribute("src"))
            if tag == "select":
                control.select_option(others[-1])
            else:
                control.fill(others[-1])
            after = digest(picture.get_attribute("src"))
            if after == before:
                problems.append(f"explorer {number}: turning its {name!r} control did not "
                                f"change the picture")
            elif picture.evaluate(PICTURE_JS) == 0:
                problems.append(f"explorer {number}: after turning {name!r} the picture is broken")
    return len(explorers), problems


def digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def visit(browser, url: str, toc_page: TocPage, *, colab: Colab, repo: Path = REPO,
          screenshots: Path | None = None) -> Visit:
    """Open one page as a reader would and check everything this module checks.

    In order: at 1280 px in light mode the console, requests, images, Colab links, the
    download button, math, code widths, title and favicon, and the page's weight; then
    dark mode's figures; then code widths at 390 px; then every explorer's controls.
    With ``screenshots``, a picture of the first screen in each of the three looks.
    """
    result = Visit(url)
    context = new_context(browser)
    try:
        page = open_page(context, url, result)
        result.problems += image_problems(page)
        result.problems += colab_problems(page, toc_page, colab, repo)
        result.problems += math_problems(page)
        result.problems += code_problems(page, DESKTOP["width"])
        result.problems += meta_problems(page)
        measure(page, result)
        if screenshots:
            screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=screenshots / f"{toc_page.slug}-light.png")
        result.problems += dark_mode_problems(page)
        if screenshots:
            page.screenshot(path=screenshots / f"{toc_page.slug}-dark.png")
        light_mode(page)
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(200)
        result.problems += code_problems(page, PHONE["width"])
        if screenshots:
            page.screenshot(path=screenshots / f"{toc_page.slug}-390px.png")
        page.set_viewport_size(DESKTOP)
        result.problems += download_problems(page, toc_page)
        result.explorers, found = explorer_problems(page)
        result.problems += found
        page.wait_for_timeout(100)  # errors thrown by the last change still count
    finally:
        context.close()
    return result


# -------------------------------------------------------------------- links, statically


class _Anchors(html.parser.HTMLParser):
    """The ids (and names) a page defines, and the links it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def _parse(path: Path) -> _Anchors:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def link_problems(site: Path, pages: list[str]) -> list[str]:
    """Every internal link on ``pages`` (paths relative to ``site``) reaches a file, and
    every ``#anchor`` an element with that id."""
    problems, parsed = [], {}

    def anchors(path: Path) -> _Anchors:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    for page in pages:
        for href in anchors(site / page).links:
            split = urlsplit(href)
            if split.scheme or split.netloc:  # external (http, https, mailto): not checked
                continue
            target_rel = posixpath.normpath(posixpath.join(posixpath.dirname(page),
                                                           unquote(split.path))) \
                if split.path else page
            target = site / target_rel
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{page}: link {href!r} leads to a missing file {target_rel}")
                continue
            fragment = unquote(split.fragment)
            if fragment and target.suffix == ".html" and fragment not in anchors(target).ids:
                problems.append(f"{page}: link {href!r} leads to a missing anchor #{fragment} "
                                f"in {target.relative_to(site)}")
    return problems


def pages_with_widgets(site: Path, pages: list[str]) -> list[str]:
    """Pages that show an ipywidgets view but no kernel-free explorer beside it."""
    lacking = []
    for page in pages:
        text = (site / page).read_text(encoding="utf-8", errors="replace")
        if "application/vnd.jupyter.widget-view+json" in text and "static-explorer" not in text:
            lacking.append(page)
    return lacking


def page_url(base: str, page: str) -> str:
    return urljoin(base.rstrip("/") + "/", page)


def weight_table(visits: dict[str, Visit]) -> str:
    """The README's table: every page's size and load time from localhost."""
    lines = [("| page | HTML (bytes) | page with its figures (bytes) | with the site's shared "
              "files, cold (bytes) | requests | load time from localhost (ms) |"),
             "|---|---:|---:|---:|---:|---:|"]
    for name, v in visits.items():
        lines.append(f"| {name} | {v.html_bytes:,} | {v.bytes:,} | {v.bytes + v.shared_bytes:,} "
                     f"| {v.requests} | {v.load_ms:.0f} |")
    return "\n".join(lines) + "\n"
