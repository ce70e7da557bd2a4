"""A real browser for tests: headless Chromium through Selenium, fully offline.

Tests of the HTML report check what a browser renders (the DOM after CSS and
script ran), the console errors, and every network request the page made.

Install (Debian/Ubuntu; no browser download is needed or attempted):

    apt-get install chromium chromium-driver
    pip install -e '.[dev]'          # selenium

Chromedriver is named explicitly (``Service(path)``) and ``SE_OFFLINE`` is set,
so Selenium Manager never tries to fetch a browser or a driver.  Paths can be
overridden with ``LVMBENCH_CHROMIUM`` and ``LVMBENCH_CHROMEDRIVER``.

A missing browser FAILS the tests with the install hint above, because CI
installs it and a silent skip would hide a broken report; set
``LVMBENCH_BROWSER_OPTIONAL=1`` to skip instead (e.g. on a laptop without
Chromium).  Screenshots go to ``LVMBENCH_ARTEFACTS`` when set, so a person can
look at them after the run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

INSTALL_HINT = ("install a browser for the HTML report tests: apt-get install chromium chromium-driver "
                "(and pip install -e '.[dev]' for selenium); or set LVMBENCH_BROWSER_OPTIONAL=1 to skip them")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,2000",
        "--hide-scrollbars", "--force-device-scale-factor=1", "--no-first-run", "--no-default-browser-check",
        "--disable-extensions", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-features=Translate,OptimizationHints,MediaRouter", "--lang=en-US")


def _which(env: str, names: tuple[str, ...]) -> str | None:
    override = os.environ.get(env)
    if override:
        return override if Path(override).exists() else None
    return next((p for p in map(shutil.which, names) if p), None)


def missing() -> str | None:
    """Why no browser can be started (selenium, chromium or chromedriver absent), or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is not installed"
    if _which("LVMBENCH_CHROMIUM", BROWSERS) is None:
        return "no chromium binary found (set LVMBENCH_CHROMIUM to its path)"
    if _which("LVMBENCH_CHROMEDRIVER", ("chromedriver",)) is None:
        return "no chromedriver found (set LVMBENCH_CHROMEDRIVER to its path)"
    return None


def artefacts_dir(default: Path) -> Path:
    """Where screenshots go: ``$LVMBENCH_ARTEFACTS`` when set (created), else ``default``."""
    path = Path(os.environ.get("LVMBENCH_ARTEFACTS") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    """One headless Chromium session; :meth:`open` a local file, then query ``driver`` and the logs."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download a browser or driver
        options = webdriver.ChromeOptions()
        options.binary_location = _which("LVMBENCH_CHROMIUM", BROWSERS) or ""
        for arg in ARGS:
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        service = Service(_which("LVMBENCH_CHROMEDRIVER", ("chromedriver",)))
        self.driver: Any = webdriver.Chrome(service=service, options=options)
        self.url = ""
        self._requests: list[str] = []
        self._console: list[dict] = []

    def open(self, path: str | Path) -> None:
        """Load a local file and wait for it; the logs start afresh for this page."""
        self._drain()
        self._requests, self._console = [], []
        self.url = Path(path).resolve().as_uri()
        self.driver.get(self.url)

    def _drain(self) -> None:
        """Move what Chrome logged since the last call into our lists (reading a Chrome log empties it)."""
        self._console += self.driver.get_log("browser")
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self._requests.append(message["params"]["request"]["url"])

    def console_errors(self) -> list[str]:
        """Console messages of level SEVERE (uncaught exceptions, console.error, failed loads)."""
        self._drain()
        return [e["message"] for e in self._console if e.get("level") == "SEVERE"]

    def requests(self) -> list[str]:
        """Every URL the page requested since :meth:`open`, the page itself included."""
        self._drain()
        return list(self._requests)

    def outside_requests(self) -> list[str]:
        """Requests that leave the file: anything but the page's own URL and ``data:`` URIs."""
        return [u for u in self.requests() if u != self.url and not u.startswith("data:")]

    def screenshot(self, path: str | Path) -> Path:
        """The whole page as a PNG (the window is resized to the page height first)."""
        path = Path(path)
        height = self.driver.execute_script(  # the content's height, not a taller window's from an earlier page
            "return Math.ceil(document.body.getBoundingClientRect().bottom + window.scrollY)")
        self.driver.set_window_size(1280, max(int(height) + 40, 800))
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        self.driver.quit()


def launch() -> Browser:
    """A started browser, or pytest.fail (default) / pytest.skip (``LVMBENCH_BROWSER_OPTIONAL=1``) with why."""
    why = missing()
    if why is None:
        try:
            return Browser()
        except Exception as exc:  # noqa: BLE001 - any start failure gets the same clear message
            why = f"chromium did not start: {type(exc).__name__}: {str(exc).strip()[:500]}"
    if os.environ.get("LVMBENCH_BROWSER_OPTIONAL") == "1":
        pytest.skip(f"{why}; {INSTALL_HINT}")
    pytest.fail(f"{why}; {INSTALL_HINT}", pytrace=False)
