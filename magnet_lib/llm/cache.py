"""The persistent response cache: one SQLite file under ``$MAGNET_HOME/cache/``.

A row is one model answer (the raw text, parsed again on every read, so a fixed parser
applies to old answers) keyed by :func:`cache_key`: model, rendered messages, sampling
parameters, task name + task version (the template hash) and the sample index. A second
identical run therefore makes no request, and editing one template changes only that task's
keys. Rows never hold the API key: nothing secret is part of the key or the row.

Several processes (Dagster's multiprocess executor) and threads share the file safely:
WAL journal mode, one connection per process and thread, a busy timeout for writers.
Transport failures are never cached; answers that fail to parse are (the re-ask that
follows is cached too, so a rerun replays the same reject without a request).

``write_behind=True`` (the runner's choice) buffers new rows in memory and writes them in one
transaction per ``FLUSH_ROWS`` rows or ``FLUSH_S`` seconds, instead of one transaction per
answer on the event loop; a buffered row is served by ``get`` at once, and the runner calls
:meth:`ResponseCache.flush` at the end of every call, so every answer of a call that returned
is on disk. ``close`` and interpreter exit flush too.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tenacity

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    task_version TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_task ON responses (task, task_version);
"""


def cache_key(
    *,
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    task: str,
    task_version: str,
    sample_index: int = 0,
) -> str:
    """The identity of one request: same key, same answer (see the module docstring)."""
    payload = json.dumps(
        {
            "model": model,
            "messages": messages,
            "params": params,
            "task": task,
            "task_version": task_version,
            "sample_index": sample_index,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


class ResponseCache:
    """Answers by key, in ``<cache_dir>/llm_responses.sqlite``."""

    FILE_NAME = "llm_responses.sqlite"

    FLUSH_ROWS = 64
    FLUSH_S = 0.5
    _INSERT = (
        "INSERT OR REPLACE INTO responses"
        " (key, task, task_version, model, text, prompt_tokens, completion_tokens, cost_usd, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def __init__(self, cache_dir: Path, *, write_behind: bool = False):
        self.path = Path(cache_dir) / self.FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.write_behind = write_behind
        self._pending: dict[str, tuple[Any, ...]] = {}
        self._pending_since = 0.0
        self._pending_lock = threading.Lock()
        self._connect()  # create the schema now, fail early on an unwritable folder
        if write_behind:
            _OPEN.add(self)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = self._open_with_schema()
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    SETUP_WAIT_S = 30.0

    def _open_with_schema(self) -> sqlite3.Connection:
        """A connection in WAL mode with the schema in place.

        Switching a new file to WAL and creating its table need a write lock, and
        SQLite answers "database is locked" at once, without waiting on the busy
        timeout, when two processes open a fresh file together (one holds a read
        lock and asks to write). Each such answer is retried after a short pause
        until ``SETUP_WAIT_S``; any other error is raised as it is.
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_locked),
            wait=tenacity.wait_exponential(multiplier=0.01, max=0.5),
            stop=tenacity.stop_after_delay(self.SETUP_WAIT_S),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
                try:
                    conn.execute("PRAGMA busy_timeout=30000")
                    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    conn.executescript(_SCHEMA)
                except sqlite3.OperationalError:
                    conn.close()
                    raise
                return conn
        raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises

    def get(self, key: str) -> CachedAnswer | None:
        if self._pending:
            with self._pending_lock:
                buffered = self._pending.get(key)
            if buffered is not None:
                return CachedAnswer(buffered[4], buffered[5], buffered[6], buffered[7])
        row = (
            self._connect()
            .execute("SELECT text, prompt_tokens, completion_tokens, cost_usd FROM responses WHERE key = ?", (key,))
            .fetchone()
        )
        return CachedAnswer(*row) if row else None

    def put(
        self,
        key: str,
        *,
        task: str,
        task_version: str,
        model: str,
        text: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        row = (key, task, task_version, model, text, prompt_tokens, completion_tokens, cost_usd, time.time())
        if not self.write_behind:
            self._connect().execute(self._INSERT, row)
            return
        now = time.monotonic()
        with self._pending_lock:
            if not self._pending:
                self._pending_since = now
            self._pending[key] = row
            due = len(self._pending) >= self.FLUSH_ROWS or now - self._pending_since >= self.FLUSH_S
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows (one transaction)."""
        with self._pending_lock:
            rows = list(self._pending.values())
            if not rows:
                return
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(self._INSERT, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._pending.clear()

    def count(self, task: str | None = None) -> int:
        self.flush()
        conn = self._connect()
        if task is None:
            return conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        return conn.execute("SELECT COUNT(*) FROM responses WHERE task = ?", (task,)).fetchone()[0]

    def prune(self, task: str, keep_version: str) -> int:
        """Delete a task's rows made by other template versions; returns how many went."""
        self.flush()
        cur = self._connect().execute("DELETE FROM responses WHERE task = ? AND task_version != ?", (task, keep_version))
        return cur.rowcount

    def close(self) -> None:
        self.flush()
        _OPEN.discard(self)
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None


_OPEN: weakref.WeakSet[ResponseCache] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for cache in list(_OPEN):
        with contextlib.suppress(Exception):  # a cache whose folder is gone: nothing to save
            cache.flush()
