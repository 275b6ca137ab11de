"""The executor is a setting: the real pipeline (a small user pool, up to sft_set) on a local
Dask cluster through dagster-dask (extra [dask]). Dask over Ray: it is a plain pip install that
starts a cluster in-process on one machine, and dagster-dask is maintained with Dagster's own
releases (0.29.27 for dagster 1.13.27)."""

from __future__ import annotations

import json
import os

import polars as pl
import pytest

from magnet_assets.orchestrate import run_pipeline
from magnet_lib.settings import load_settings

pytest.importorskip("dagster_dask")
pytestmark = pytest.mark.slow


def test_the_pipeline_runs_on_a_local_dask_cluster(magnet_home, monkeypatch):
    from tests.test_incremental import ORCHARD

    tools_dir = magnet_home.parent / "tools"
    (tools_dir / "orchard").mkdir(parents=True)
    (tools_dir / "orchard" / "orchard.json").write_text(json.dumps(ORCHARD))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    settings = load_settings(home=magnet_home, tools_dir=tools_dir, run={"executor": "dask", "max_concurrent": 2})
    summary = run_pipeline(settings, assets=["sft_set"])
    assert not summary.failed, [(s.asset, s.partition, s.error) for s in summary.failed]
    assert {s.asset for s in summary.materialized()} >= {"function_pool", "dependency_graph", "query_call_pairs", "sft_set"}
    assert pl.read_parquet(magnet_home / "storage" / "sft_set.parquet").height > 0
    # the steps really ran on the cluster: in dask's worker processes, not in this one (where
    # run_pipeline makes every run when the executor is dask)
    from magnet_assets.orchestrate import open_instance

    instance = open_instance(settings)
    step_pids = {
        e.dagster_event.pid
        for run_id in summary.run_ids
        for e in instance.all_logs(run_id)
        if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_START"
    }
    assert step_pids and os.getpid() not in step_pids, step_pids
    assert not run_pipeline(settings, assets=["sft_set"]).materialized()


def test_why_dagster_dask_fails_on_a_category_run_and_the_run_its_steps_get():
    """The cause, without a cluster: dask's argument parsing of a category run's DagsterRun."""
    import dagster as dg
    from dagster._core.definitions.partitions.partition_key_range import PartitionKeyRange
    from dagster._core.definitions.partitions.subset import KeyRangesPartitionsSubset
    from dagster._core.remote_representation.external_data import PartitionsSnap
    from dask._task_spec import parse_input

    from magnet_assets.partitions import category_partitions

    subset = KeyRangesPartitionsSubset(
        key_ranges=[PartitionKeyRange("marine", "marine")], partitions_snap=PartitionsSnap.from_def(category_partitions)
    )
    run = dg.DagsterRun(job_name="magnet_assets_job", run_id="r", tags={"dagster/partition": "marine"}, partitions_subset=subset)
    with pytest.raises(Exception, match="Iteration is not allowed on `@record` KeyRangesPartitionsSubset"):
        parse_input(run)
    parse_input(dg.DagsterRun(job_name="magnet_assets_job", run_id="r"))  # an unpartitioned run goes through
    # what the steps get instead: parsable, same partition
    from magnet_assets.dask_engine import run_for_dask

    fixed = run_for_dask(run)
    parse_input(fixed)
    assert fixed.tags["dagster/partition"] == "marine" and fixed.get_resolved_partitions_subset_for_events(category_partitions) is not None
