"""Where output goes: one place that decides, overridable with ``WFNB_FRONTEND`` or ``use()``.

``jupyterlab``/``notebook``/``vscode``/``colab``/``kernel`` get rich, live HTML displays (a kernel
with no known front end, e.g. ``jupyter execute``, is ``kernel``: its outputs are saved in the
notebook); ``terminal`` (terminal IPython) and ``python`` (no IPython) get plain text.
"""

from __future__ import annotations

import os
import sys
from typing import Literal

Frontend = Literal["jupyterlab", "notebook", "vscode", "colab", "kernel", "terminal", "python"]
FRONTENDS: tuple[Frontend, ...] = (
    "jupyterlab", "notebook", "vscode", "colab", "kernel", "terminal", "python"
)
_forced: Frontend | None = None


def use(frontend: Frontend | None) -> None:
    """Force a frontend (tests, unusual set-ups); ``None`` goes back to detection."""
    global _forced  # noqa: PLW0603 - one process-wide override, by design
    if frontend is not None and frontend not in FRONTENDS:
        raise ValueError(f"frontend must be one of {FRONTENDS}, not {frontend!r}")
    _forced = frontend


def detect() -> Frontend:
    """The frontend this process is displaying to."""
    if _forced is not None:
        return _forced
    named = os.environ.get("WFNB_FRONTEND", "")
    for frontend in FRONTENDS:
        if named == frontend:
            return frontend
    if "IPython" not in sys.modules:
        return "python"
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return "python"
    if type(shell).__name__ != "ZMQInteractiveShell":
        return "terminal"
    if "google.colab" in sys.modules:
        return "colab"
    if "VSCODE_PID" in os.environ or "VSCODE_CWD" in os.environ:
        return "vscode"
    if "JPY_SESSION_NAME" in os.environ or "JUPYTERHUB_API_TOKEN" in os.environ:
        return "jupyterlab"
    return "kernel"


def is_rich(frontend: Frontend) -> bool:
    """Whether the frontend renders HTML displays (and updates them in place)."""
    return frontend not in ("terminal", "python")
