"""``--path blog_posts.0.topic``: the value at a dotted path inside a stored state.

Elements are dict keys, or list indexes (negative ones count from the end). A tuple or set is
stored tagged (``{"$wfnb": "tuple", "v": [...]}``); an index steps into its items directly.
"""

from __future__ import annotations

from typing import Any

from wfnb.cli._exits import NOT_FOUND, CliError
from wfnb.storage import TAG, format_path


def lookup(document: Any, path: str) -> Any:
    """The value at ``path``; CliError (not found) naming the element that failed, and where."""
    node, walked = document, list[str | int]()
    for element in path.split("."):
        try:
            node, key = _step(node, element)
        except LookupError as missing:
            where = format_path("session_state", walked)
            raise CliError(
                f"--path {path!r} fails at {element!r}: {where} {missing}", NOT_FOUND
            ) from None
        walked.append(key)
    return node


def _step(node: Any, element: str) -> tuple[Any, str | int]:
    """The child named by ``element`` and its key; LookupError saying why there is none."""
    if isinstance(node, dict) and TAG in node and isinstance(node.get("v"), list):
        node = node["v"]  # a tagged tuple or set: index its items
    if isinstance(node, dict):
        if element not in node:
            keys = ", ".join(repr(k) for k in list(node)[:10]) + (", ..." if len(node) > 10 else "")
            raise LookupError(f"has no key {element!r} (keys: {keys or 'none'})")
        return node[element], element
    if isinstance(node, list):
        try:
            index = int(element)
        except ValueError:
            raise LookupError(f"is a list, and {element!r} is not an index") from None
        if not -len(node) <= index < len(node):
            raise LookupError(f"has {len(node)} items, no item {index}")
        return node[index], index
    kind = "null" if node is None else f"a {type(node).__name__}"
    raise LookupError(f"is {kind}, not a dict or list")
