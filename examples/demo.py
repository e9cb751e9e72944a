"""`make demo`: the design document's blog-post workflow, run twice on SQLite.

The first run streams a post from the local writer and saves it in session_state; the second
run finds it there and returns at once. Then it says where the state lives.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from blog_post import make_generator

from wfnb import RunEvent


def main() -> None:
    topic = "sourdough bread"
    for attempt in (1, 2):
        workflow = make_generator()  # a fresh object each time, as a new kernel would make
        started = time.perf_counter()
        print(f"--- run {attempt}: topic {topic!r}")
        cached = False
        for response in workflow.run(topic=topic):
            cached = cached or response.event == RunEvent.workflow_completed.value
            print(response.content, end="", flush=True)
        elapsed = time.perf_counter() - started
        source = "served from session_state" if cached else "generated and saved to session_state"
        print(f"\n--- run {attempt}: {source} in {elapsed:.2f} s (run_id {workflow.run_id})\n")

    storage = workflow.storage
    assert storage is not None
    stored = storage.read(workflow.session_id)
    assert stored is not None
    print("session_state is stored in:")
    print(f"  file:    {Path(getattr(storage, 'db_file', '')).resolve()}")
    print(f"  table:   {storage.table_name}")
    print(f"  session: {workflow.session_id} (version {stored.version}, "
          f"{len(stored.session_state['blog_posts'])} cached post(s))")
    print("Run `make demo` again: every run is now served from the stored session_state.")


if __name__ == "__main__":
    main()
