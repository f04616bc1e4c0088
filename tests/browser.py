"""Opening a report in Debian's headless Chromium, driven by Playwright (no browser download).

Every request the page makes is recorded and every one but the page itself is aborted, so a
page that tried to reach anything (a CDN script, a font, an image, a beacon) shows it here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Flags known to work in this project's containers; Playwright adds --headless itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class OpenedPage:
    page: Any  # playwright.sync_api.Page
    url: str
    requests: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    page_errors: list[str] = field(default_factory=list)

    @property
    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind in ("error", "warning")]

    @property
    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if u != self.url]


@contextmanager
def open_page(path: Path, *, width: int = 1200, height: int = 900) -> Iterator[OpenedPage]:
    """``path`` loaded in a fresh headless Chromium profile, with its requests and console."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="safeset-chromium-") as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": width, "height": height},
            offline=True,
        )
        try:
            url = path.resolve().as_uri()
            opened = OpenedPage(browser.new_page(), url)
            page = opened.page
            page.on("console", lambda m: opened.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: opened.page_errors.append(str(e)))
            browser.on("request", lambda r: opened.requests.append(r.url))

            def guard(route: Any) -> None:
                if route.request.url == url:
                    route.continue_()
                else:
                    route.abort()

            browser.route("**/*", guard)
            page.goto(url, wait_until="load")
            yield opened
        finally:
            browser.close()
