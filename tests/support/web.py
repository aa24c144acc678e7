"""Shared pieces of the web view tests: a real ``agentops ui`` process, headless
Chromium (the OS's own, driven by Selenium through the OS's chromedriver; never a
downloaded browser), and runs recorded by real ``agentops run`` processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support.reliability import agentops_command, cli_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1360,900",
)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return (
                f"{path} is not installed (apt-get install chromium chromium-driver; .ci/run does)"
            )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra has it)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with a fresh profile, closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="agentops-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def ui_server(db: Path | str, *extra: str, logs: list[str] | None = None) -> Iterator[str]:
    """``agentops ui --db DB --port 0`` in its own process; yields its base URL. ``logs``
    receives what the process wrote to stderr, once it has stopped."""
    process = subprocess.Popen(
        agentops_command("ui", "--db", db, "--port", "0", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "http://" not in line:
            process.kill()
            raise AssertionError(f"agentops ui did not start: {line}{process.communicate()[1]}")
        url = line.split("http://", 1)[1].split()[0]
        yield f"http://{url.rstrip('/')}"
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        if logs is not None:
            logs.append(stderr)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read().decode(),
            )
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()


def wait_for(driver: Any, script: str, *, timeout: float = 30.0) -> Any:
    """Poll ``return <script>`` in the page until it is truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{script} was still {value!r} after {timeout:g}s")


def screenshot(driver: Any, name: str, default: Path) -> Path:
    """Save the page as NAME.png in ``$AGENTOPS_SCREENSHOTS`` (``docs`` refreshes the ones the
    README shows), else in ``default`` (the test's temporary directory)."""
    directory = Path(os.environ.get("AGENTOPS_SCREENSHOTS") or default)
    if not directory.is_absolute():
        directory = ROOT / directory
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
    return path


def needs_browser() -> pytest.MarkDecorator:
    reason = browser_missing()
    return pytest.mark.skipif(reason is not None, reason=reason or "")
