#!/usr/bin/env python3
"""Load every page of the built book in headless Chromium and check what a reader would see.

    mdbook build book && python scripts/check_book_browser.py book/book
    python scripts/check_book_browser.py book/book --screenshot phase-3-1-4.html=/tmp/p.png

Serves the built book on 127.0.0.1 (a random port; the server logs every request), starts
Debian's ``chromium`` headless with a window of the width a reader has (1280 × 900 by
default), and drives it over the DevTools protocol (the pinned ``websockets`` package; no
chromedriver). On every page it fails on:

- a **broken image**: not loaded, or zero-sized;
- a **request that fails or leaves the book**: any response of 400 or more, any failed
  load, and any resource fetched from another origin (the served book must be complete);
- a **link that leads nowhere or out of the book**: a link on the book's origin that escapes
  the book's root, answers 404, or names a ``#fragment`` the target page does not have.
  Links to other sites (documentation the text cites) are counted and listed, not fetched;
- outside the appendix (``appendix/``) and the print page, a **table or figure wider than
  the text column**: a table whose own width passes the ``main`` column, or an image drawn
  wider than the column (the browser would scale it down, and its text with it).

Prints what it checked and how long it took; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

EXEMPT_WIDTH = ("appendix/", "print.html", "404.html")
# Chromium asks every origin for /favicon.ico whatever the page links; the book links its
# own icons (favicon.svg, favicon.png), so that request says nothing about the book.
IGNORED_REQUESTS = ("/favicon.ico",)

# What the page reports back: its images, links, tables and the text column.
PROBE = r"""
(() => {
  const main = document.querySelector('main');
  const column = main ? main.getBoundingClientRect().width : document.body.clientWidth;
  const images = [...document.querySelectorAll('main img')].map(img => ({
    src: img.currentSrc || img.src,
    complete: img.complete,
    natural: img.naturalWidth,
    naturalHeight: img.naturalHeight,
    shown: img.getBoundingClientRect().width,
  }));
  const tables = [...document.querySelectorAll('main table')].map((t, i) => {
    const head = t.querySelector('th');
    return {
      index: i,
      width: Math.max(t.scrollWidth, t.getBoundingClientRect().width),
      head: head ? head.textContent.trim().slice(0, 60) : '',
    };
  });
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  return JSON.stringify({column, images, tables, links, ids});
})()
"""


class Server(http.server.ThreadingHTTPServer):
    """Serves the built book and remembers the status of every request."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(Handler, directory=str(root))
        super().__init__(("127.0.0.1", 0), handler)
        self.log: list[tuple[str, int]] = []
        self.lock = threading.Lock()


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        server: Any = self.server
        with server.lock:
            server.log.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class Browser:
    """One headless Chromium page, driven over the DevTools protocol."""

    def __init__(self, width: int, height: int) -> None:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            raise SystemExit("check_book_browser: no chromium (run scripts/setup_browser.sh)")
        self.profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile.name}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("check_book_browser: chromium did not start")
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        )
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        for method in ("Page.enable", "Network.enable", "Runtime.enable"):
            self.call(method)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def load(self, url: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Navigates to ``url``, waits for its load event, returns the events meanwhile."""
        self.events = []
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}: no load event in {timeout} s")
            msg = json.loads(self.ws.recv(timeout=timeout))
            if "method" in msg:
                self.events.append(msg)
        # Let the page's own scripts (the sidebar, highlighting) finish.
        self.call("Runtime.evaluate", expression="document.fonts.ready", awaitPromise=True)
        return self.events

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def screenshot(self, path: Path, full: bool = False) -> None:
        """The viewport, or with ``full`` the whole page, as a PNG."""
        params: dict[str, Any] = {"format": "png"}
        if full:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                              "scale": 1}  # fmt: skip
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)
        path.write_bytes(base64.b64decode(data["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        # Chromium's helper processes can still write into the profile for a moment after
        # the browser has exited (a "Directory not empty" once): try again for a while.
        for _ in range(50):
            shutil.rmtree(self.profile.name, ignore_errors=True)
            if not os.path.exists(self.profile.name):
                break
            time.sleep(0.1)
        self.profile.cleanup()


@contextlib.contextmanager
def serving(root: Path) -> Iterator[Server]:
    server = Server(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()


def page_ids(root: Path, rel: str, cache: dict[str, set[str] | None]) -> set[str] | None:
    """The element ids of a built page (None if the page does not exist)."""
    if rel not in cache:
        path = root / rel
        if path.is_file():
            cache[rel] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
        else:
            cache[rel] = None
    return cache[rel]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("book", nargs="?", type=Path, default=Path("book/book"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument(
        "--screenshot",
        action="append",
        default=[],
        metavar="PAGE=PNG",
        help="also save a screenshot of PAGE (a path in the book) to PNG",
    )
    ap.add_argument("--full-page", action="store_true", help="screenshots of whole pages")
    args = ap.parse_args()
    root = args.book.resolve()
    if not (root / "index.html").is_file():
        raise SystemExit(f"check_book_browser: {root} has no index.html (mdbook build book)")
    pages = sorted(str(p.relative_to(root)) for p in root.rglob("*.html"))
    shots = dict(s.split("=", 1) for s in args.screenshot)
    started = time.monotonic()
    failures: list[str] = []
    counts = {"pages": 0, "images": 0, "links": 0, "external": 0, "tables": 0, "requests": 0}
    external: set[str] = set()
    ids_cache: dict[str, set[str] | None] = {}
    checked_links: set[str] = set()
    with serving(root) as server:
        origin = f"http://127.0.0.1:{server.server_address[1]}"
        browser = Browser(args.width, args.height)
        try:
            for rel in pages:
                url = f"{origin}/{rel}"
                events = browser.load(url)
                counts["pages"] += 1
                # requests: failures, errors, other origins
                for e in events:
                    p = e.get("params", {})
                    if e["method"] == "Network.requestWillBeSent":
                        counts["requests"] += 1
                        req = p["request"]["url"]
                        if not req.startswith(origin) and not req.startswith("data:"):
                            failures.append(f"{rel}: fetches {req} from outside the book")
                    elif e["method"] == "Network.responseReceived":
                        status = p["response"]["status"]
                        path = urllib.parse.urlsplit(p["response"]["url"]).path
                        if status >= 400 and path not in IGNORED_REQUESTS:
                            failures.append(f"{rel}: {p['response']['url']} answered {status}")
                    elif e["method"] == "Network.loadingFailed" and not p.get("canceled"):
                        failures.append(f"{rel}: a request failed ({p.get('errorText')})")
                info = json.loads(browser.evaluate(PROBE))
                column = info["column"]
                exempt = rel.startswith(EXEMPT_WIDTH)
                for img in info["images"]:
                    counts["images"] += 1
                    name = img["src"].removeprefix(origin)
                    if not img["complete"] or img["natural"] == 0:
                        failures.append(f"{rel}: broken image {name}")
                    elif not exempt and img["natural"] > column + 1:
                        failures.append(
                            f"{rel}: figure {name} is {img['natural']} px wide, the text column "
                            f"{column:.0f} px: the browser scales it (and its text) down"
                        )
                if not exempt:
                    for t in info["tables"]:
                        counts["tables"] += 1
                        if t["width"] > column + 1:
                            failures.append(
                                f"{rel}: table {t['index'] + 1} ('{t['head']}') is "
                                f"{t['width']:.0f} px wide, the text column {column:.0f} px"
                            )
                for href in info["links"]:
                    counts["links"] += 1
                    parsed = urllib.parse.urlsplit(href)
                    if parsed.scheme in ("mailto", "javascript"):
                        continue
                    if f"{parsed.scheme}://{parsed.netloc}" != origin:
                        counts["external"] += 1
                        external.add(href)
                        continue
                    target = urllib.parse.unquote(parsed.path).lstrip("/") or "index.html"
                    if target.endswith("/"):
                        target += "index.html"
                    key = f"{target}#{parsed.fragment}"
                    if key in checked_links:
                        continue
                    checked_links.add(key)
                    resolved = (root / target).resolve()
                    if root not in resolved.parents and resolved != root:
                        failures.append(f"{rel}: link {href} leaves the book")
                        continue
                    ids = page_ids(root, target, ids_cache) if target.endswith(".html") else None
                    if not (root / target).is_file():
                        failures.append(f"{rel}: link {href} leads nowhere (404)")
                    elif parsed.fragment and ids is not None and rel != "404.html":
                        # (404.html is served for any missing path, so mdbook gives it a
                        # <base href="/">: its heading's own #anchor resolves against the
                        # root, not the page. Its other links are checked.)
                        frag = urllib.parse.unquote(parsed.fragment)
                        if frag not in ids:
                            failures.append(f"{rel}: link {href}: no #{frag} in {target}")
                if rel in shots:
                    browser.screenshot(Path(shots[rel]), args.full_page)
        finally:
            browser.close()
        bad = [(p, c) for p, c in server.log if c >= 400 and p not in IGNORED_REQUESTS]
        for path, code in bad:
            failures.append(f"the server answered {code} for {path}")
    took = time.monotonic() - started
    print(
        f"check_book_browser: {browser.version.strip()}, window {args.width}×{args.height}: "
        f"{counts['pages']} pages, {counts['requests']} requests, {counts['images']} images, "
        f"{counts['links']} links ({len(checked_links)} distinct in the book, "
        f"{len(external)} distinct to other sites, not fetched), {counts['tables']} tables "
        f"checked for width outside the appendix; {took:.1f} s"
    )
    if external:
        print("  links to other sites: " + ", ".join(sorted(external)))
    if failures:
        print(f"check_book_browser: {len(failures)} problems:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
