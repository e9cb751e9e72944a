"""One JupyterLab server and one Chromium for the whole browser session; a fresh page per test.

Chromium is Debian's (``apt-get install chromium``), started by the ``playwright`` package with
``executable_path`` (``playwright install`` is not needed). Without a ``chromium`` on PATH
(or ``$WFNB_CHROMIUM``) every test here is skipped, saying so. Screenshots and the server's log
go to ``test-output/e2e/`` (or ``$WFNB_E2E_OUTPUT``); a failing test leaves
``FAILED-<test>.png``.
``WFNB_E2E_DOCS_IMAGES=1`` also refreshes the screenshots the README shows (docs/images/).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.e2e._lab import PROJECT, TUTORIALS, Lab, Shooter, copy_without_outputs

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage",
]
VIEWPORT: ViewportSize = {"width": 1200, "height": 800}
TIMEOUT_MS = 60_000


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="session")
def chromium() -> str:
    path = os.environ.get("WFNB_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.skip("no chromium on PATH: browser tests skipped (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where screenshots and the server log go (gitignored)."""
    folder = Path(os.environ.get("WFNB_E2E_OUTPUT", PROJECT / "test-output" / "e2e"))
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


@pytest.fixture(scope="session")
def lab(chromium: str, tmp_path_factory: pytest.TempPathFactory,
        output_dir: Path) -> Iterator[Lab]:
    """JupyterLab on a free port over a temporary root holding the tutorials (outputs cleared)."""
    root = tmp_path_factory.mktemp("lab-root")
    for tutorial in TUTORIALS:
        copy_without_outputs(tutorial, root / tutorial.name)
    server = Lab.start(root, tmp_path_factory.mktemp("lab-home"), output_dir / "jupyterlab.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium: str, lab: Lab,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=chromium,
            headless=True, args=CHROMIUM_FLAGS, viewport=VIEWPORT,
        )
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext, lab: Lab, output_dir: Path,
         request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new tab; afterwards a screenshot if the test failed, and its kernels shut down."""
    tab = browser.new_page()
    yield tab
    if request.node.stash.get(_FAILED, False):
        with contextlib.suppress(PlaywrightError):  # a crashed page must not hide the failure
            tab.screenshot(path=output_dir / f"FAILED-{request.node.name}.png")
    tab.close()
    lab.shut_down_kernels()


@pytest.fixture
def shoot(page: Page, output_dir: Path) -> Shooter:
    return Shooter(page, output_dir)
