"""A visit of every page of MLflow's UI in a real Chromium, recording what went wrong on each.

Failed requests (HTTP 4xx/5xx) and console errors are collected per page, normalised (ids
and ports replaced by placeholders) so the same page over two servers compares equal, and
each page is kept as a screenshot.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SETTLE_MS = 1000  # after the network is idle, for late renders and their requests
SETTLE_LIMIT_MS = 4000  # pages that poll are never idle
PAGE_TIMEOUT_MS = 60_000
# Browser notices, not application errors: Chromium reports a ResizeObserver callback that
# resized again within one frame, which depends on timing (a loaded machine), not on the server.
BENIGN_CONSOLE = ("ResizeObserver loop completed with undelivered notifications",)


@dataclass
class PageReport:
    name: str
    url: str
    problems: set[str] = field(default_factory=set)
    screenshot: Path | None = None
    text: str = ""
    elapsed_s: float = 0.0
    shown_s: float = 0.0  # from navigation to the awaited text being visible
    requests: list[str] = field(default_factory=list)  # URLs (path and query) of this server the page asked for


@contextmanager
def browser() -> Iterator[Any]:
    """Debian's chromium driven by playwright (its own browser download does not work here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def normalise(text: str, ids: dict[str, str]) -> str:
    """A problem line with run/experiment/model ids, ports and numbers replaced by placeholders."""
    for value, name in sorted(ids.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(value, f"<{name}>")
    text = re.sub(r"127\.0\.0\.1:\d+", "<host>", text)
    text = re.sub(r"\b[0-9a-f]{32}\b", "<id>", text)
    text = re.sub(r"m-[0-9a-f]{32}", "<model>", text)
    return re.sub(r"\d{4,}", "<n>", text)


class Tour:
    """One browser context over one server; :meth:`visit` returns a :class:`PageReport`."""

    def __init__(self, chromium: Any, base_url: str, shots: Path, ids: dict[str, str]) -> None:
        self.base_url = base_url
        self.shots = shots
        self.ids = ids
        self.context = chromium.new_context(viewport={"width": 1920, "height": 1000})
        self.context.set_default_timeout(PAGE_TIMEOUT_MS)
        self.page = self.context.new_page()
        self._problems: set[str] = set()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self._problems.add(normalise(f"page error: {exc}", self.ids)))
        self.page.on("response", self._on_response)
        self._pending: set[Any] = set()
        self._requests: list[str] = []
        self.page.on("request", self._on_request)
        self.page.on("requestfinished", lambda request: self._pending.discard(request))
        self.page.on("requestfailed", lambda request: self._pending.discard(request))

    def _on_request(self, request: Any) -> None:
        self._pending.add(request)
        if request.url.startswith(self.base_url):
            self._requests.append(request.url[len(self.base_url):])

    def _on_console(self, message: Any) -> None:
        if message.type == "error" and not any(benign in message.text for benign in BENIGN_CONSOLE):
            self._problems.add(normalise(f"console: {message.text}", self.ids))

    def _on_response(self, response: Any) -> None:
        if response.status >= 400 and response.url.startswith(self.base_url):
            path = response.url[len(self.base_url):].split("?")[0]
            self._problems.add(normalise(f"HTTP {response.status} {response.request.method} {path}", self.ids))

    def visit(self, name: str, route: str, *, wait_for: str | None = None,
              steps: Sequence[tuple[str, Callable[[Any], None]]] = ()) -> PageReport:
        """Open ``route`` (a hash route), wait for ``wait_for`` text, screenshot; then each of
        ``steps`` (label, action on the page; it asserts its own effect), each followed by a
        screenshot ``<name>-<label>``. ``text`` is the page's before the steps; problems and
        requests of the steps count for the page."""
        self._problems, self._requests = set(), []
        url = f"{self.base_url}/#{route}"
        began = time.perf_counter()
        self.page.goto(url, wait_until="domcontentloaded")
        if wait_for:
            self.page.get_by_text(wait_for, exact=False).filter(visible=True).first.wait_for(state="visible")
        report = PageReport(name, url, shown_s=time.perf_counter() - began)
        self._settle()
        report.screenshot = self._shoot(name)
        report.text = self.page.inner_text("body")
        for label, action in steps:
            action(self.page)
            self._settle()
            self._shoot(f"{name}-{label}")
        report.problems = set(self._problems)
        report.requests = list(self._requests)
        report.elapsed_s = time.perf_counter() - began
        return report

    def _shoot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def _settle(self, quiet_ms: int = SETTLE_MS, limit_ms: int = SETTLE_LIMIT_MS) -> None:
        """Wait until no request has been in flight for ``quiet_ms`` (the UI polls, so never "networkidle")."""
        quiet, waited = 0, 0
        while quiet < quiet_ms and waited < limit_ms:
            self.page.wait_for_timeout(250)
            waited += 250
            quiet = 0 if self._pending else quiet + 250

    def close(self) -> None:
        self.context.close()
