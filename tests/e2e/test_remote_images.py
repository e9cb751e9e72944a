"""A remote image in streamed model output is never fetched by the browser, unless allowed.

A local HTTP server on 127.0.0.1 stands for the tracking host and counts what reaches it: the
default cell's image (its URL carrying a "secret") must never arrive, while it streams, after it
or when the saved notebook is opened again; the cell run with
``%config WorkflowMagics.allow_remote_images = True`` must arrive, which proves the server would
have seen the first one too.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.e2e._lab import (
    Lab,
    error_outputs,
    open_notebook,
    output_area,
    run_all_cells,
    wait_until_run,
    write_notebook,
)

pytestmark = pytest.mark.browser

GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002"
                    "024401003b")


class Tracker(http.server.ThreadingHTTPServer):
    """Answers every GET with a 1x1 GIF and remembers the paths asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), _Pixel)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Pixel(http.server.BaseHTTPRequestHandler):
    server: Tracker

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", str(len(GIF)))
        self.end_headers()
        self.wfile.write(GIF)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    server = Tracker()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def streaming_cell(url: str, secret: str) -> str:
    """A workflow cell whose output holds a remote image, streamed around it in pieces."""
    return f"""%%workflow e2e_pixel_{secret} --db tmp/e2e_pixel.db
import time

yield "Model output with a tracking pixel: "
time.sleep(0.4)
yield "![status]({url}/pixel.gif?secret={secret})"
for n in range(4):
    time.sleep(0.3)
    yield f" and more text {{n}}"
yield "\\n\\nThe end.\\n"
"""


def wait_for_path(tracker: Tracker, fragment: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(fragment in path for path in tracker.paths):
            return True
        time.sleep(0.1)
    return False


def test_a_remote_image_is_a_link_and_is_never_fetched(
    page: Page, lab: Lab, tracker: Tracker
) -> None:
    name = "e2e_remote_images.ipynb"
    write_notebook(lab.root / name, [
        "%load_ext wfnb",
        streaming_cell(tracker.url, "blocked"),
        "%config WorkflowMagics.allow_remote_images = True",
        streaming_cell(tracker.url, "allowed"),
    ])
    open_notebook(page, lab, name)
    run_all_cells(page)
    wait_until_run(page, lab)
    assert not error_outputs(page)

    assert wait_for_path(tracker, "secret=allowed"), tracker.paths  # the server does see images
    assert not any("secret=blocked" in path for path in tracker.paths), tracker.paths
    blocked = output_area(page, 1)
    link = blocked.locator("a.wfnb-remote-image")
    assert link.count() == 1 and link.inner_text() == "image: status"
    assert blocked.locator("img").count() == 0
    assert output_area(page, 3).locator("img").count() == 1

    page.keyboard.press("Control+s")  # the saved notebook, opened again, fetches nothing either
    deadline = time.monotonic() + 30
    while "wfnb-remote-image" not in (lab.root / name).read_text():
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.2)
    saved = json.loads((lab.root / name).read_text())
    html = "".join(
        "".join(output.get("data", {}).get("text/html", ""))
        for output in saved["cells"][1]["outputs"]
    )
    assert "secret=blocked" in html and "<img" not in html
    page.reload()
    output_area(page, 1).locator("a.wfnb-remote-image").wait_for()
    page.wait_for_timeout(2000)
    assert not any("secret=blocked" in path for path in tracker.paths), tracker.paths
