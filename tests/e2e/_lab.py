"""A JupyterLab server for the browser tests, and what a person does in it: open, run, look.

The server runs from the test's own Python (the project's .venv) on 127.0.0.1 with no token,
in a temporary root with its own config, settings and workspaces, so nothing of the machine's
Jupyter set-up leaks in. It is stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page

PROJECT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((PROJECT / "notebooks").glob("0*.ipynb"))
DOCS_IMAGES = PROJECT / "docs" / "images"
STDERR_MIME = "application/vnd.jupyter.stderr"  # JupyterLab shows stderr *and* errors with it
# Settings a person would pick once: no news toast (and no network), every cell kept in the
# DOM (windowing would drop cells scrolled out of view), and the notebook's kernel started
# without asking (else a "Select Kernel" dialog shows now and then, when kernel specs load late).
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
        {"windowingMode": "none", "autoStartDefaultKernel": True},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab: its URL, the root folder it serves, its process and log."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, root: Path, home: Path, log: Path, *, timeout: float = 90.0,
              app: str = "jupyterlab") -> Lab:
        """Start JupyterLab (or, with ``app="notebook"``, Notebook 7) on a free port and wait
        until its REST API answers."""
        for folder in ("config", "runtime", "settings", "workspaces"):
            (home / folder).mkdir(parents=True, exist_ok=True)
        for name, values in USER_SETTINGS.items():
            target = home / "settings" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("WFNB_FRONTEND", "JUPYTER_TOKEN", "JUPYTER_PASSWORD")}
        env.update(JUPYTER_CONFIG_DIR=str(home / "config"),
                   JUPYTER_RUNTIME_DIR=str(home / "runtime"), PYTHONUNBUFFERED="1")
        command = [
            sys.executable, "-m", app, "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=", "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root}",
            f"--LabServerApp.user_settings_dir={home / 'settings'}",
            f"--LabServerApp.workspaces_dir={home / 'workspaces'}",
            *(["--LabApp.news_url=None", "--LabApp.extension_manager=readonly"]
              if app == "jupyterlab" else []),
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                       cwd=root)
        lab = cls(f"http://127.0.0.1:{port}", root, process, log)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{app} exited with {process.returncode}:\n{lab.log_tail()}")
            with contextlib.suppress(OSError):
                lab.api("GET", "/api/status")
                return lab
            if time.monotonic() > deadline:
                lab.stop()
                raise RuntimeError(f"{app} did not answer in {timeout:.0f} s:\n"
                                   f"{lab.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API (no token: it runs with authentication off)."""
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """Shut every kernel down through the API (a test's notebook leaves one running)."""
        with contextlib.suppress(OSError):
            for session in self.api("GET", "/api/sessions"):
                with contextlib.suppress(OSError):
                    self.api("DELETE", f"/api/sessions/{session['id']}")
            for kernel in self.api("GET", "/api/kernels"):
                with contextlib.suppress(OSError):
                    self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def kernels_idle(self) -> bool:
        return all(k["execution_state"] == "idle" for k in self.api("GET", "/api/kernels"))

    def kernel_ready(self, path: str) -> bool:
        """Whether the notebook at ``path`` has a session whose kernel is up and idle."""
        return any(session["path"] == path and session["kernel"]
                   and session["kernel"]["execution_state"] == "idle"
                   for session in self.api("GET", "/api/sessions"))

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server by its pid: kernels first, then SIGTERM, then SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.shut_down_kernels()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A Python 3 notebook of code cells (a cell starting with '# md' is Markdown)."""
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": source.removeprefix("# md\n")}
            if source.startswith("# md\n") else
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
             "source": source}
            for source in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))
    return path


def copy_without_outputs(source: Path, target: Path) -> Path:
    """A copy of a notebook as a person would get it after "Clear All Outputs"."""
    notebook = json.loads(source.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target.write_text(json.dumps(notebook, indent=1))
    return target


def open_notebook(page: Page, lab: Lab, name: str, timeout: float = 60.0) -> None:
    """Open ``name`` in a reset workspace, wait for its kernel, and fold the file browser away."""
    page.goto(f"{lab.url}/lab/tree/{name}?reset")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    deadline = time.monotonic() + timeout
    while not lab.kernel_ready(name):
        choose = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
        if choose.count():  # should not show (autoStartDefaultKernel); if it does, accept it
            choose.click()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no idle kernel for {name} after {timeout:.0f} s")
        page.wait_for_timeout(100)
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.first.click()
        page.locator("#jp-left-stack").wait_for(state="hidden")


def code_cells(page: Page) -> Locator:
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell")


def run_all_cells(page: Page) -> None:
    """Run > Run All Cells, through the menu bar."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


_DONE = """([mime]) => {
  const prompts = [...document.querySelectorAll(
      '.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
  const busy = prompts.some(p => p.includes('*'));
  const idle = document.querySelector(
      '.jp-Notebook-ExecutionIndicator[data-status="idle"]') !== null;
  const failed = document.querySelector(`.jp-OutputArea-output[data-mime-type="${mime}"]`);
  return idle && !busy && (failed !== null || prompts.every(p => /\\[\\d+\\]/.test(p)));
}"""


def wait_until_run(page: Page, lab: Lab, timeout: float = 120.0) -> None:
    """Wait until every code cell ran (or one failed and the rest were cancelled) and the
    kernel is idle, seen by the page and by the server alike, twice in a row."""
    deadline = time.monotonic() + timeout
    settled = 0
    while settled < 2:
        remaining_ms = max(1.0, deadline - time.monotonic()) * 1000
        page.wait_for_function(_DONE, arg=[STDERR_MIME], timeout=remaining_ms, polling=100)
        settled = settled + 1 if lab.kernels_idle() else 0
        if time.monotonic() > deadline:
            raise TimeoutError(f"the notebook did not finish running in {timeout:.0f} s")
        page.wait_for_timeout(200)


def error_outputs(page: Page) -> list[str]:
    """The text of every stderr or error output in the open notebook."""
    selector = f'.jp-NotebookPanel .jp-OutputArea-output[data-mime-type="{STDERR_MIME}"]'
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def output_area(page: Page, index: int) -> Locator:
    return code_cells(page).nth(index).locator(".jp-OutputArea")


class Shooter:
    """Saves screenshots into the output folder; ``docs=`` names also refresh docs/images."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page, self.folder = page, folder

    def __call__(self, name: str, *, docs: str | None = None) -> Path:
        path = self.folder / f"{name}.png"
        self.page.screenshot(path=path)
        if docs is not None and os.environ.get("WFNB_E2E_DOCS_IMAGES") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / docs)
        return path
