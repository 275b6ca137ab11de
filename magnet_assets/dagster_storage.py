"""Dagster's own SQLite storage, with connections kept open.

Dagster's SQLite run and event-log storages build a new SQLAlchemy engine, open a new
connection and dispose of both for every event they store and every query they answer: a
category run of nine steps does that about 650 times, a quarter of its time on two cores.
:class:`PooledSqliteStorage` is the same storage (same files under ``history/`` and ``schedules/``, same schema,
same queries, Dagster's own code for all of it) whose run and event-log parts keep one engine
per database file, with SQLAlchemy's connection pool, for the life of the process.

The instance configuration that ``magnet run`` and ``magnet ui`` write selects it (Dagster's
``storage: custom:`` setting in ``dagster.yaml``), so the UI, the daemon and the ``dagster``
CLI read and write the same files the same way. An open connection holds no lock between
uses (each use is one committed transaction), so several processes share the files as before.
A forked child does not reuse its parent's connections, and the event log keeps at most
:data:`MAX_SHARDS` run files open (the least recently used are closed).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SQLITE_BUSY_TIMEOUT_SECONDS, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)

#: run files (one per run, plus the index) whose engine the event log keeps open
MAX_SHARDS = 8


def _engine(url: str, timeout: float | None = None) -> sa.Engine:
    args: dict[str, Any] = {"check_same_thread": False}  # a pooled connection may serve another thread later
    if timeout is not None:
        args["timeout"] = timeout
    return sa.create_engine(url, connect_args=args)


class _Engines:
    """Engines by database URL for this process (a fork starts afresh), least recently used
    first; beyond ``limit`` the oldest is disposed of."""

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self._pid = os.getpid()
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, timeout: float | None = None) -> tuple[sa.Engine, bool]:
        """The engine for ``url`` and whether it is new."""
        with self._lock:
            if self._pid != os.getpid():  # the parent's connections are not this process's to use
                self._engines, self._pid = OrderedDict(), os.getpid()
            engine = self._engines.get(url)
            if engine is not None:
                self._engines.move_to_end(url)
                return engine, False
            engine = self._engines[url] = _engine(url, timeout)
            while self.limit is not None and len(self._engines) > self.limit:
                self._engines.popitem(last=False)[1].dispose()
            return engine, True

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log (a file per run plus an index file), engines kept open."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines = _Engines(MAX_SHARDS)  # before Dagster's set-up, which connects
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # ty: ignore[invalid-method-override]
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:  # as Dagster's: one use of the storage at a time
            engine, _ = self._engines.get(self.conn_string_for_shard(shard), SQLITE_BUSY_TIMEOUT_SECONDS)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def wipe(self) -> None:
        self._engines.dispose()  # the run files are deleted: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._engines.dispose()


class PooledSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage (``runs.db``), its engine kept open."""

    def __init__(self, conn_string: str, inst_data=None):
        self._engines = _Engines()
        super().__init__(conn_string, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # ty: ignore[invalid-method-override]
        return cls.from_local(inst_data=inst_data, **config_value)

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        engine, _ = self._engines.get(self._conn_string)
        with engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        self._engines.dispose()


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (``storage: sqlite:``) with the pooled run and event-log
    parts; the schedule storage is Dagster's own. Configured as

        storage:
          custom:
            module: magnet_assets.dagster_storage
            class: PooledSqliteStorage
            config:
              base_dir: /path/to/the/dagster/home   # history/runs.db, history/runs/, schedules/
    """

    def __init__(self, base_dir: str, inst_data=None):  # DagsterSqliteStorage's, with the pooled parts
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # ty: ignore[invalid-method-override]
        return cls.from_local(inst_data=inst_data, **config_value)
