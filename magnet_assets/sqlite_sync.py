"""How hard the Dagster instance's SQLite files are synced to disk (``run.sqlite_sync``).

Dagster's SQLite storages open a fresh connection for every event they store and every
query (a run of nine steps writes and reads a few hundred times) and use SQLite's default
``synchronous=FULL``: each commit, and each last close (a WAL checkpoint), waits for an
fsync. On the project's machines that is 5-15 ms a time, most of a category run's time.
With ``off`` (the default) the instance's files are handed to the operating system without
waiting: a killed or interrupted process loses nothing (SQLite's journal still rolls back a
half-written transaction), only an operating-system crash or a power cut may leave the run
history damaged (then ``rm -r $MAGNET_HOME/dagster``; the tables under storage/ are written
apart, by rename). ``normal`` or ``full`` (SQLite's own levels) trade that speed back.

SQLAlchemy's ``connect`` event applies the level to the connections Dagster makes to files
under a registered Dagster home (the one ``magnet run`` opens, or ``$DAGSTER_HOME``) in every
process that imports this module: ``magnet run``, its category workers and the executor's
step processes. Other SQLite files (the LLM cache, a user's own databases) keep theirs.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

LEVELS = ("off", "normal", "full")
#: the environment variable the level travels in to worker and step processes (the setting's own)
ENV = "MAGNET_RUN_SQLITE_SYNC"
_homes: set[str] = set()


def register(dagster_home: str | Path, level: str) -> None:
    """Apply ``level`` to this process's (and its children's) connections to ``dagster_home``."""
    if level not in LEVELS:
        raise ValueError(f"run.sqlite_sync: {level!r} is not one of {', '.join(LEVELS)}")
    _homes.add(str(Path(dagster_home).resolve()))
    os.environ[ENV] = level


def _under_a_home(path: str) -> bool:
    homes = set(_homes)
    if os.environ.get("DAGSTER_HOME"):
        homes.add(str(Path(os.environ["DAGSTER_HOME"]).resolve()))
    return any(path == h or path.startswith(h + os.sep) for h in homes)


@event.listens_for(Engine, "connect")
def _set_sync(dbapi_connection, connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    level = os.environ.get(ENV, "off").lower()
    if level not in LEVELS or level == "full":  # full: SQLite's default
        return
    rows = dbapi_connection.execute("PRAGMA database_list").fetchall()
    main = next((row[2] for row in rows if row[1] == "main"), "")
    if main and _under_a_home(main):
        dbapi_connection.execute(f"PRAGMA synchronous={level.upper()}")
