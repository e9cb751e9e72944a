"""Run the tutorial notebooks top to bottom in fresh kernels, as `jupyter execute` would.

`make notebooks` (``python notebooks/execute.py --save``) refreshes their saved outputs; the
test suite runs them without saving (tests/test_notebooks.py) and `make demo` runs the blog post
one. Execution timestamps are not recorded, so a refresh changes only what the cells show.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent
NOTEBOOKS = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def execute(path: Path, *, save: bool = False, timeout: int = 120) -> nbformat.NotebookNode:
    """The notebook at ``path`` executed in a fresh kernel started in its folder."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    if save:
        nbformat.write(notebook, path)
    return notebook


def main(arguments: list[str]) -> None:
    save = "--save" in arguments
    paths = [Path(a) for a in arguments if not a.startswith("--")] or NOTEBOOKS
    for path in paths:
        print(f"executing {path}{' (saving outputs)' if save else ''}")
        execute(path, save=save)


if __name__ == "__main__":
    main(sys.argv[1:])
