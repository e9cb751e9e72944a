"""`make demo`: the blog-post tutorial notebook, executed headless on the embedded SQLite default.

It runs notebooks/02_blog_post_generator.ipynb in a fresh kernel (as `jupyter execute` would),
then prints what the notebook showed: the post as it was streamed, the second run served from
session_state, and where the state is stored.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02_blog_post_generator.ipynb"


def load_runner() -> Any:
    runner = ROOT / "notebooks" / "execute.py"
    spec = importlib.util.spec_from_file_location("notebook_execute", runner)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown(notebook: Any) -> list[tuple[str, str]]:
    """(kind, text) of every output, in order: "md" for Markdown, "status", "print"."""
    items: list[tuple[str, str]] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                items.append(("print", output["text"]))
            elif output["output_type"] == "display_data":
                html = output["data"].get("text/html", "")
                text = output["data"].get("text/plain", "")
                if "wfnb-status" in html:
                    items.append(("status", text))
                elif text:
                    items.append(("md", text))
    return items


def main() -> None:
    print(f"Executing {NOTEBOOK.relative_to(ROOT)} in a fresh kernel...\n")
    outputs = shown(load_runner().execute(NOTEBOOK))
    posts = [text for kind, text in outputs if kind == "md"]
    statuses = [text for kind, text in outputs if kind == "status"]
    prints = [text for kind, text in outputs if kind == "print"]
    print("--- run 1: streamed live, then saved in session_state ---")
    print(posts[0])
    print(f"[{statuses[0]}]\n")
    print("--- run 2: the same topic ---")
    print(f"[{statuses[1]}]")
    print(prints[0].strip(), "\n")
    print("--- where the state is ---")
    print(prints[1].strip().replace("tmp/workflows.db",
                                    str(NOTEBOOK.parent / "tmp" / "workflows.db")))
    print("\nOpen the tutorials in JupyterLab with: make lab")


if __name__ == "__main__":
    main()
