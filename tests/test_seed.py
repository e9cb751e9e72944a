"""The design document's example, run as written there (only its imports changed)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import StorageFactory
from wfnb import RunEvent

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

from blog_post import BlogPostGenerator, LocalWriter, make_generator


def test_the_seed_example_caches_its_post_in_session_state(make_storage: StorageFactory) -> None:
    def generator() -> BlogPostGenerator:
        return BlogPostGenerator(
            session_id="my-session-id", storage=make_storage(), writer=LocalWriter(delay=0)
        )

    first = list(generator().run(topic="pasta"))
    second = list(generator().run(topic="pasta"))
    post = "".join(r.content for r in first)
    assert post.startswith("# Pasta") and len(first) > 10
    assert [(r.event, r.content) for r in second] == [(RunEvent.workflow_completed.value, post)]
    assert generator().session_state == {"blog_posts": [{"topic": "pasta", "blog_post": post}]}


def test_the_seed_storage_line_creates_its_folder_and_table(tmp_path: Path) -> None:
    workflow = make_generator(str(tmp_path / "tmp" / "workflows.db"))
    workflow.writer = LocalWriter(delay=0)
    list(workflow.run(topic="soup"))
    assert (tmp_path / "tmp" / "workflows.db").is_file()
    assert workflow.storage is not None
    assert workflow.storage.table_name == "generate_blog_post_workflows"
    assert workflow.storage.list_sessions()[0].session_id == "my-session-id"
