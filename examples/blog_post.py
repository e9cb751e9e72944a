"""The design document's blog-post workflow, with only its imports changed.

The "writer" is a small local, deterministic text generator (no network, no model): it streams a
short post word by word, so the second run, served from session_state, is visibly instant.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from wfnb import RunEvent, RunResponse, SqliteWorkflowStorage, Workflow, logger


@dataclass
class LocalWriter:
    """Stands in for an LLM agent: ``run(topic)`` streams a post; ``run_response`` keeps it."""

    delay: float = 0.01
    run_response: RunResponse | None = None

    def run(self, topic: str) -> Iterator[str]:
        words = (
            f"# {topic.title()}\n\nA short post about {topic}, written by a local, deterministic "
            f"generator standing in for a model. Everything about {topic} begins with curiosity."
        ).split(" ")
        text = ""
        for index, word in enumerate(words):
            chunk = word if index == 0 else " " + word
            text += chunk
            time.sleep(self.delay)
            yield chunk
        self.run_response = RunResponse(content=text)


class BlogPostGenerator(Workflow):
    writer: Any = None

    def run(self, topic: str, use_cache: bool = True) -> Iterator[RunResponse]:
        # Read from the session state cache
        if use_cache and "blog_posts" in self.session_state:
            logger.info("Checking if cached blog post exists")
            for cached_blog_post in self.session_state["blog_posts"]:
                if cached_blog_post["topic"] == topic:
                    logger.info("Found cached blog post")
                    yield RunResponse(
                        run_id=self.run_id,
                        event=RunEvent.workflow_completed,
                        content=cached_blog_post["blog_post"],
                    )
                    return

        # ... generate the blog post
        for chunk in self.writer.run(topic):
            yield RunResponse(run_id=self.run_id, content=chunk)

        # Save to session state for future runs
        if "blog_posts" not in self.session_state:
            self.session_state["blog_posts"] = []
        self.session_state["blog_posts"].append(
            {"topic": topic, "blog_post": self.writer.run_response.content}
        )


def make_generator(db_file: str = "tmp/workflows.db") -> BlogPostGenerator:
    """The seed's workflow object, exactly as the design document builds it."""
    return BlogPostGenerator(
        # Fix the session_id for this demo
        session_id="my-session-id",
        storage=SqliteWorkflowStorage(
            table_name="generate_blog_post_workflows",
            db_file=db_file,
        ),
        writer=LocalWriter(),
    )
