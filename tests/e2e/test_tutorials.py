"""Every tutorial notebook runs top to bottom in JupyterLab (Run > Run All Cells) with no
error and nothing on stderr, as a reader would run it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e._lab import (
    TUTORIALS,
    Lab,
    Shooter,
    code_cells,
    error_outputs,
    open_notebook,
    run_all_cells,
    wait_until_run,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda path: path.stem)
def test_a_tutorial_runs_all_cells_cleanly_in_jupyterlab(
    page: Page, lab: Lab, shoot: Shooter, tutorial: Path
) -> None:
    open_notebook(page, lab, tutorial.name)  # the lab root holds it with outputs cleared
    run_all_cells(page)
    wait_until_run(page, lab)
    shoot(f"04_{tutorial.stem}")

    assert error_outputs(page) == []
    prompts = [text.strip() for text in
               code_cells(page).locator(".jp-InputPrompt").all_inner_texts()]
    assert prompts, "no code cells found"
    not_run = [n for n, prompt in enumerate(prompts) if not prompt[1:-2].isdigit()]
    assert not not_run, f"code cells {not_run} did not run: {prompts}"
