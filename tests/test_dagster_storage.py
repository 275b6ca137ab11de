"""The instance's storage: Dagster's SQLite files under history/, with connections kept open
(magnet_assets.dagster_storage); what one process writes another reads, and an older home's
settings file gets it without losing its history."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg

from magnet_assets.dagster_storage import MAX_SHARDS, PooledSqliteEventLogStorage, PooledSqliteRunStorage, PooledSqliteStorage
from magnet_assets.orchestrate import DAGSTER_YAML, open_instance
from magnet_lib.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


@dg.asset
def plain() -> int:
    return 1


def _materialize(instance: dg.DagsterInstance) -> str:
    return dg.materialize([plain], instance=instance).run_id


def test_a_fresh_home_stores_runs_and_events_through_the_pooled_storage(magnet_home):
    instance = open_instance(load_settings(home=magnet_home))
    assert isinstance(instance.get_ref().storage_data.rehydrate(PooledSqliteStorage), PooledSqliteStorage)
    assert isinstance(instance.run_storage, PooledSqliteRunStorage)
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    run_ids = [_materialize(instance) for _ in range(MAX_SHARDS + 3)]  # more run files than engines kept
    assert {r.run_id for r in instance.get_runs()} == set(run_ids)
    assert instance.get_latest_materialization_event(dg.AssetKey("plain")).run_id == run_ids[-1]
    for run_id in run_ids[:2]:  # the oldest runs' files were closed and open again
        assert any(e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS" for e in instance.all_logs(run_id))
    files = sorted(p.name for p in (magnet_home / "dagster" / "history").iterdir())
    assert "runs.db" in files and "runs" in files and (magnet_home / "dagster" / "schedules").is_dir()  # Dagster's own layout


def test_another_process_reads_what_this_one_wrote_and_the_other_way_round(magnet_home):
    instance = open_instance(load_settings(home=magnet_home))
    mine = _materialize(instance)
    script = textwrap.dedent(
        f"""
        import dagster as dg
        from magnet_assets.orchestrate import open_instance
        from magnet_lib.settings import load_settings
        from tests.test_dagster_storage import plain
        instance = open_instance(load_settings(home={str(magnet_home)!r}))
        assert instance.get_run_by_id({mine!r}) is not None
        print(dg.materialize([plain], instance=instance).run_id)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    theirs = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    other = theirs.stdout.strip().splitlines()[-1]
    assert instance.get_run_by_id(other).status == dg.DagsterRunStatus.SUCCESS  # this process's open connections see it
    assert instance.get_latest_materialization_event(dg.AssetKey("plain")).run_id == other


def test_an_older_home_keeps_its_history_and_a_moved_home_its_own_files(magnet_home, tmp_path):
    dagster_home = magnet_home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML.format(runs=2))  # as versions before this one wrote it
    old = dg.DagsterInstance.from_config(str(dagster_home))
    assert not isinstance(old.run_storage, PooledSqliteRunStorage)
    before = _materialize(old)
    old.dispose()
    instance = open_instance(load_settings(home=magnet_home))
    assert isinstance(instance.run_storage, PooledSqliteRunStorage)
    assert instance.get_run_by_id(before) is not None  # the same files, read the new way
    instance.dispose()
    moved = tmp_path / "moved_home"
    shutil.copytree(magnet_home, moved)
    copy = open_instance(load_settings(home=moved))
    after = _materialize(copy)
    assert f'base_dir: "{moved / "dagster"}"' in (moved / "dagster" / "dagster.yaml").read_text()
    assert copy.get_run_by_id(before) is not None and copy.get_run_by_id(after) is not None
    assert open_instance(load_settings(home=magnet_home)).get_run_by_id(after) is None  # the original untouched


def test_a_settings_file_that_names_its_own_storage_is_left_alone(magnet_home):
    dagster_home = magnet_home / "dagster"
    dagster_home.mkdir(parents=True)
    own = f"storage:\n  sqlite:\n    base_dir: {dagster_home / 'elsewhere'}\n"
    (dagster_home / "dagster.yaml").write_text(own)
    instance = open_instance(load_settings(home=magnet_home))
    assert (dagster_home / "dagster.yaml").read_text() == own
    assert not isinstance(instance.run_storage, PooledSqliteRunStorage)
    _materialize(instance)
    assert (dagster_home / "elsewhere" / "history" / "runs.db").exists()
