#!/usr/bin/env python
"""Open every page of the built book in headless Chromium and list what a reader would see wrong.

    python tools/check_book.py [_build/html] [--page book/05_reml.html ...] [--width 1280]

Exit status 0 when no page has a problem, 1 when some page has one (each is printed
as ``page: kind: detail``), 2 when the check itself cannot run (no build, no Chromium).

The pages are served from a local HTTP server (as GitHub Pages would serve them) and
loaded, one after another, into a single tab of one headless Chromium driven over the
Chrome DevTools Protocol (a websocket; the ``websocket-client`` package).  Each page is
inspected after MathJax has typeset it, with every hidden cell and dropdown opened, in a
1280 px wide window.  The problems found:

``math-error``      MathJax rendered an error (``merror``: a TeX error, or an undefined
                    macro shown in red by MathJax's ``noundefined`` extension);
``math-untypeset``  a ``.math`` element that MathJax did not typeset;
``raw-tex``         TeX left in a text node outside code (``$...$``, ``\\begin{``, ``\\frac``);
``missing-image``   an ``<img>`` that did not load (naturalWidth 0) or whose file is absent;
``missing-file``    a script, stylesheet or other resource answered 404 or failed to load;
``broken-link``     a link to a page or file of the site that does not exist;
``broken-anchor``   a link to ``page#id`` where the page has no element with that id;
``too-wide``        display math, a code block or a table wider than the text column
                    (it scrolls: scrollWidth > clientWidth, or it sticks out past the
                    right edge of the main column);
``js-error``        an uncaught JavaScript exception.

Links to other sites are not followed (the check runs offline).
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import websocket  # the websocket-client package

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SITE = ROOT / "_build" / "html"
INSTALL_HINT = (
    "Install Chromium (Debian/Ubuntu: `sudo apt-get install -y chromium`), "
    "or point the CHROMIUM environment variable at a Chrome/Chromium binary."
)
# Directories of the build that hold no pages of the book.
NOT_PAGES = {"_static", "_sources", "_images", "_downloads", ".doctrees"}


class CheckError(RuntimeError):
    """The check could not run (no Chromium, no build, the browser died)."""


@dataclass(frozen=True, order=True)
class Problem:
    page: str      # path of the page relative to the site root, e.g. book/05_reml.html
    kind: str      # one of the kinds in the module docstring
    detail: str    # what and where, for a person

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


# --------------------------------------------------------------------------- Chromium

def find_chromium() -> str:
    """Path of a Chromium binary: $CHROMIUM, else the usual names on the PATH."""
    candidates = [os.environ.get("CHROMIUM", "")]
    candidates += ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                   "chrome", "/usr/bin/chromium"]
    for name in candidates:
        if name and (path := shutil.which(name)):
            return path
    raise CheckError("Chromium not found. " + INSTALL_HINT)


class Browser:
    """One headless Chromium and one tab in it, spoken to over the DevTools Protocol."""

    def __init__(self, width: int = 1280, height: int = 900, timeout: float = 120.0):
        self.binary = find_chromium()
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="check-book-chromium-")
        args = [
            self.binary, "--headless", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-dev-shm-usage",
            "--disable-component-update", "--mute-audio",
            f"--window-size={width},{height}", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root otherwise
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            port, path = self._devtools_endpoint()
            self.ws = websocket.create_connection(
                f"ws://127.0.0.1:{port}{path}", timeout=timeout, suppress_origin=True,
                enable_multithread=False)
            self._next_id = 0
            self.events: list[dict] = []
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target,
                                     flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                self.call(f"{domain}.enable", session=self.session)
            self.call("Emulation.setDeviceMetricsOverride", session=self.session,
                      width=width, height=height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def _devtools_endpoint(self) -> tuple[str, str]:
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:]
                raise CheckError(f"Chromium ({self.binary}) exited at start:\n{err}")
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return lines[0], lines[1]
            time.sleep(0.05)
        raise CheckError(f"Chromium ({self.binary}) did not open its DevTools port")

    def call(self, method: str, session: str | None = None, **params):
        """Send one command and return its result (events met meanwhile are kept)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CheckError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def _receive(self) -> dict:
        try:
            reply = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            raise CheckError(f"Chromium did not answer within {self.timeout:.0f} s") from None
        if "method" in reply:
            self.events.append(reply)
        return reply

    def wait_for_event(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == method for e in self.events):
            if time.monotonic() > deadline:
                raise CheckError(f"no {method} within {timeout:.0f} s")
            self._receive()

    def open(self, url: str) -> list[dict]:
        """Load url in the tab and wait for its load event; return the page's events so far.

        ``self.events`` keeps collecting the page's events until the next ``open``.
        """
        self.events = []
        result = self.call("Page.navigate", session=self.session, url=url)
        if result.get("errorText"):
            raise CheckError(f"{url}: {result['errorText']}")
        self.wait_for_event("Page.loadEventFired", self.timeout)
        return self.events

    def evaluate(self, expression: str):
        """Value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call("Runtime.evaluate", session=self.session, expression=expression,
                           awaitPromise=True, returnByValue=True,
                           timeout=int(self.timeout * 1000))
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CheckError(f"the page inspector failed: {text}")
        return result["result"].get("value")

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                ws.close()
            except Exception:  # closing a dead socket is fine
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- serving

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no access log on stderr
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@functools.lru_cache(maxsize=None)
def _inspector_js() -> str:
    return (Path(__file__).with_name("check_book_page.js")).read_text(encoding="utf-8")


class _IdParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == "id" or (tag == "a" and name == "name")):
                self.ids.add(value)


def _ids_in_file(path: Path) -> set[str]:
    parser = _IdParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser.ids


_REFRESH = re.compile(
    r'<meta\s+http-equiv=["\']?refresh["\']?\s+content=["\']?\s*\d+\s*;\s*url=([^"\'>\s]+)',
    re.IGNORECASE)


def _redirect_target(path: Path) -> str | None:
    """The URL a page redirects to with <meta http-equiv="refresh">, if it is such a page."""
    head = path.read_text(encoding="utf-8", errors="replace")[:2000]
    match = _REFRESH.search(head)
    return match.group(1) if match else None


def site_pages(site: Path) -> list[str]:
    """Every HTML page of the build, relative to its root (static files excluded)."""
    pages = []
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site)
        if not NOT_PAGES.intersection(rel.parts[:-1]):
            pages.append(rel.as_posix())
    return pages


# --------------------------------------------------------------------------- the check

def check_site(site: Path | str, pages: list[str] | None = None, width: int = 1280,
               progress=None) -> list[Problem]:
    """Problems on the given pages (default: every page) of the site built in ``site``."""
    site = Path(site).resolve()
    if not (site / "index.html").exists() and not pages:
        raise CheckError(f"no built book in {site} (run `make book` first)")
    pages = pages or site_pages(site)
    for page in pages:
        if not (site / page).is_file():
            raise CheckError(f"{page}: no such page in {site}")

    handler = functools.partial(_QuietHandler, directory=str(site))
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    problems: set[Problem] = set()
    links: list[tuple[str, str, str]] = []     # (page, absolute url, link text)
    ids: dict[str, set[str]] = {}              # page path -> ids in its DOM
    try:
        with Browser(width=width) as browser:
            for page in pages:
                started = time.monotonic()
                redirect = _redirect_target(site / page)
                if redirect is not None:  # e.g. index.html -> book/intro.html
                    links.append((page, urljoin(base + page, redirect), "redirect"))
                    continue
                browser.open(base + page)
                report = browser.evaluate(_inspector_js())
                events = browser.events  # from the navigation to the end of the inspection
                ids[page] = set(report["ids"])
                for item in report["problems"]:
                    problems.add(Problem(page, item["kind"], item["detail"]))
                for href, text in report["links"]:
                    links.append((page, href, text))
                reported = set()
                for image in report["images"]:
                    local = _local_path(site, base, image["url"])
                    if local and not local[0].is_file():
                        why = "does not exist"
                    elif not image["loaded"]:
                        why = "did not load"
                    else:
                        continue
                    reported.add(urldefrag(image["url"])[0])
                    problems.add(Problem(page, "missing-image",
                                         f'{image["src"]} {why} (alt "{image["alt"]}"){image["where"]}'))
                problems.update(_problems_from_events(page, base, events, reported))
                if progress:
                    progress(page, time.monotonic() - started)
    finally:
        server.shutdown()
        server.server_close()
    problems.update(_link_problems(site, base, links, ids))
    return sorted(problems)


def _local_path(site: Path, base: str, url: str) -> tuple[Path, str] | None:
    """(file, fragment) for a URL of the local site, else None."""
    if not url.startswith(base):
        return None
    url, fragment = urldefrag(url)
    rel = unquote(urlparse(url).path).lstrip("/")
    path = site / rel
    if rel == "" or rel.endswith("/"):
        path = path / "index.html"
    return path, unquote(fragment)


def _rel(base: str, url: str) -> str:
    return url[len(base):] if url.startswith(base) else url


def _problems_from_events(page: str, base: str, events: list[dict],
                          reported: set[str]) -> set[Problem]:
    """Failed requests for files of the site and uncaught exceptions, from the page's events.

    ``reported`` are URLs already reported otherwise (missing images); the browser's own
    request for /favicon.ico is not the book's.
    """
    found = set()
    ignore = reported | {base + "favicon.ico"}
    requests = {}
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            requests[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived":
            status = params["response"]["status"]
            url = params["response"]["url"]
            if status >= 400 and url.startswith(base) and url not in ignore:
                found.add(Problem(page, "missing-file", f"{_rel(base, url)} answered {status}"))
        elif method == "Network.loadingFailed":
            url = requests.get(params["requestId"], "")
            if url.startswith(base) and url not in ignore and not params.get("canceled"):
                found.add(Problem(page, "missing-file",
                                  f"{_rel(base, url)}: {params.get('errorText')}"))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            where = details.get("url", "")
            found.add(Problem(page, "js-error",
                              f"{(text or '').splitlines()[0][:200]} ({_rel(base, where)})"))
    return found


def _link_problems(site, base, links, ids) -> set[Problem]:
    found = set()
    parsed: dict[Path, set[str]] = {}
    for page, href, text in links:
        local = _local_path(site, base, href)
        if local is None:
            continue  # another site: not followed offline
        path, fragment = local
        label = f'"{text}" -> {_rel(base, href)}' if text else _rel(base, href)
        if not path.is_file():
            found.add(Problem(page, "broken-link", f"{label} (no such file)"))
            continue
        if not fragment or path.suffix != ".html":
            continue
        rel = path.relative_to(site).as_posix()
        if rel in ids:
            target_ids = ids[rel]
        else:
            if path not in parsed:
                parsed[path] = _ids_in_file(path)
            target_ids = parsed[path]
        if fragment not in target_ids:
            found.add(Problem(page, "broken-anchor", f"{label} (no id {fragment!r} on {rel})"))
    return found


# --------------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default=str(DEFAULT_SITE),
                        help="the built HTML (default: _build/html)")
    parser.add_argument("--page", action="append", default=None,
                        help="check only this page (relative to the site; repeatable)")
    parser.add_argument("--width", type=int, default=1280, help="window width in px")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-page timings")
    args = parser.parse_args(argv)

    def progress(page, seconds):
        if not args.quiet:
            print(f"  {seconds:5.1f} s  {page}", file=sys.stderr)

    started = time.monotonic()
    try:
        problems = check_site(args.site, args.page, args.width, progress)
    except CheckError as error:
        print(f"check_book: {error}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    pages = len(args.page) if args.page else len(site_pages(Path(args.site)))
    for problem in problems:
        print(problem)
    status = f"{len(problems)} problem(s)" if problems else "no problems"
    print(f"check_book: {pages} page(s) checked in {elapsed:.0f} s: {status}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
