"""Which task and item a rendered prompt belongs to, for the local test server.

The test server (:mod:`magnet_lib.llm.testserver`) answers a request with the offline
implementation of the task that rendered it. It cannot read that from the HTTP body, so the
:class:`~magnet_lib.llm.runner.TaskRunner` records every prompt it renders here: hash of the
messages -> (task, item). The registry is process-global and only records while a test server
is running in the same process (so it costs nothing in a real run); tests and benchmarks run
the server and the runner in one process.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

_LOCK = threading.Lock()
_ENTRIES: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
_MAX_ENTRIES = 500_000
_active = 0


def messages_hash(messages: list[dict[str, Any]]) -> str:
    """Hash of the roles and contents of a message list (other fields ignored)."""
    payload = json.dumps([[m.get("role"), m.get("content")] for m in messages], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def activate() -> None:
    global _active
    with _LOCK:
        _active += 1


def deactivate() -> None:
    global _active
    with _LOCK:
        _active = max(0, _active - 1)
        if not _active:
            _ENTRIES.clear()


def active() -> bool:
    return _active > 0


def register(messages: list[dict[str, Any]], task: Any, item: Any) -> None:
    if not _active:
        return
    key = messages_hash(messages)
    with _LOCK:
        _ENTRIES[key] = (task, item)
        _ENTRIES.move_to_end(key)
        while len(_ENTRIES) > _MAX_ENTRIES:
            _ENTRIES.popitem(last=False)


def lookup(messages: list[dict[str, Any]]) -> tuple[Any, Any] | None:
    """The (task, item) that rendered ``messages``; re-ask turns at the end are stripped
    (assistant answer + user complaint pairs) until a registered prompt is found."""
    current = list(messages)
    while current:
        with _LOCK:
            found = _ENTRIES.get(messages_hash(current))
        if found is not None:
            return found
        if len(current) >= 3 and current[-1].get("role") == "user" and current[-2].get("role") == "assistant":
            current = current[:-2]
        else:
            return None
    return None
