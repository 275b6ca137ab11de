"""run.sqlite_sync: the Dagster instance's SQLite connections skip the fsync wait, others keep SQLite's default."""

import sqlalchemy as sa

from magnet_assets import sqlite_sync
from magnet_assets.orchestrate import open_instance
from magnet_lib.settings import load_settings

LEVEL = {0: "off", 1: "normal", 2: "full"}


def _level(path) -> str:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        value = conn.execute(sa.text("PRAGMA synchronous")).scalar()
    engine.dispose()
    return LEVEL[value]


def test_instance_files_off_other_files_untouched(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv(sqlite_sync.ENV, raising=False)
    settings = load_settings(home=tmp_path / "home")
    instance = open_instance(settings)
    instance.get_runs(limit=1)
    dagster_home = settings.dagster_home.resolve()
    assert _level(dagster_home / "history" / "runs.db") == "off"
    # the connections Dagster itself makes to its event log
    with instance.event_log_storage.index_connection() as conn:
        assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 0
    assert _level(tmp_path / "elsewhere.db") == "full"  # a file outside the home keeps SQLite's default


def test_level_is_a_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("MAGNET_RUN_SQLITE_SYNC", "full")
    settings = load_settings(home=tmp_path / "home")
    assert settings.run.sqlite_sync == "full"
    open_instance(settings)
    assert _level(settings.dagster_home.resolve() / "history" / "runs.db") == "full"
    monkeypatch.setenv("MAGNET_RUN_SQLITE_SYNC", "normal")
    open_instance(load_settings(home=tmp_path / "home"))
    assert _level(settings.dagster_home.resolve() / "history" / "runs.db") == "normal"
