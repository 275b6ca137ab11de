"""Which task and item a rendered prompt belongs to, for the local test server.

The test server (:mod:`magnet_lib.testing.server`) answers a request with the offline
implementation of the task that rendered it. It cannot read that from the HTTP body, so while
a test server runs in the process, :meth:`TaskRunner.prompt
<magnet_lib.llm.runner.TaskRunner.prompt>` is wrapped to record every prompt a runner renders
here: hash of the messages -> (task, item). Nothing on the production path knows about it: the
wrapper is installed by :func:`activate` and removed by the last :func:`deactivate`. Tests and
benchmarks run the server and the runner in one process.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from magnet_lib.llm.runner import TaskRunner

_LOCK = threading.Lock()
_ENTRIES: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
_MAX_ENTRIES = 500_000
_active = 0
_unwrapped_prompt: Any = None


def messages_hash(messages: list[dict[str, Any]]) -> str:
    """Hash of the roles and contents of a message list (other fields ignored)."""
    payload = json.dumps([[m.get("role"), m.get("content")] for m in messages], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def activate() -> None:
    """Start recording the prompts every runner of this process renders."""
    global _active, _unwrapped_prompt
    with _LOCK:
        _active += 1
        if _unwrapped_prompt is None:
            _unwrapped_prompt = TaskRunner.prompt

            def recording_prompt(self, task, item, temperature=None, max_tokens=None):
                messages, params = _unwrapped_prompt(self, task, item, temperature, max_tokens)
                register(messages, task, item)
                return messages, params

            TaskRunner.prompt = recording_prompt  # type: ignore[method-assign]


def deactivate() -> None:
    global _active, _unwrapped_prompt
    with _LOCK:
        _active = max(0, _active - 1)
        if not _active:
            _ENTRIES.clear()
            if _unwrapped_prompt is not None:
                TaskRunner.prompt = _unwrapped_prompt  # type: ignore[method-assign]
                _unwrapped_prompt = None


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
