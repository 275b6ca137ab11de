"""Source observation, the category sensor and the headless incremental run."""

from __future__ import annotations

import json

import dagster as dg
from dagster._core.definitions.observe import observe

from magnet_assets.orchestrate import run_pipeline
from magnet_assets.sources import category_sensor
from magnet_lib.pool.function_pool import discover_categories
from magnet_lib.settings import load_settings


def _spec(name: str, description: str) -> str:
    return json.dumps(
        [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": description,
                    "parameters": {
                        "type": "object",
                        "properties": {"harbour": {"type": "string", "description": "Harbour."}},
                        "required": ["harbour"],
                    },
                },
            }
        ]
    )


def test_observe_tool_sources_per_partition(dagster_harness):
    h = dagster_harness
    (h.tools_dir / "marine").mkdir()
    (h.tools_dir / "marine" / "tides.json").write_text(_spec("get_tide", "Tide height."))
    h.add_categories("navigation", "marine")
    source = h.defs.get_assets_def(dg.AssetKey("tool_sources"))
    result = observe([source], instance=h.instance)
    assert result.success
    observed = {
        e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation.tags["dagster/data_version"]
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    settings = load_settings(home=h.home, tools_dir=h.tools_dir)
    expected = {c: s.version() for c, s in discover_categories(settings).items() if c in ("navigation", "marine")}
    assert observed == expected
    assert h.materialize("function_pool", "tool_rejects", partition="marine").success


def test_sensor_adds_a_partition_for_a_new_category(dagster_harness):
    h = dagster_harness
    resources = {"magnet": h.defs.resources["magnet"]}
    first = category_sensor(dg.build_sensor_context(instance=h.instance, resources=resources))
    added = first.dynamic_partitions_requests[0].partition_keys
    assert "navigation" in added and "marine" not in added
    h.instance.add_dynamic_partitions("category", list(added))
    (h.tools_dir / "marine").mkdir()
    (h.tools_dir / "marine" / "tides.json").write_text(_spec("get_tide", "Tide height."))
    second = category_sensor(dg.build_sensor_context(instance=h.instance, resources=resources, cursor=first.cursor))
    assert list(second.dynamic_partitions_requests[0].partition_keys) == ["marine"]
    # only the new category gets a new data version of tool_sources
    assert [e.partition for e in second.asset_events] == ["marine"]
    h.instance.add_dynamic_partitions("category", ["marine"])
    quiet = category_sensor(dg.build_sensor_context(instance=h.instance, resources=resources, cursor=second.cursor))
    assert isinstance(quiet, dg.SkipReason)
    (h.tools_dir / "marine" / "tides.json").write_text(_spec("get_tide", "Tide height in metres."))
    edited = category_sensor(dg.build_sensor_context(instance=h.instance, resources=resources, cursor=second.cursor))
    assert not edited.dynamic_partitions_requests
    assert [(e.partition, e.tags["dagster/data_version"]) for e in edited.asset_events] == [("marine", json.loads(edited.cursor)["marine"])]


def test_incremental_run_rebuilds_only_the_changed_category(magnet_home, monkeypatch):
    tools_dir = magnet_home.parent / "tools"
    for cat in ("marine", "orchard"):
        (tools_dir / cat).mkdir(parents=True)
        (tools_dir / cat / "specs.json").write_text(_spec(f"get_{cat}_status", f"Status of the {cat}."))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    settings = load_settings(home=magnet_home, tools_dir=tools_dir)

    first = run_pipeline(settings, assets=["function_pool"])
    assert not first.failed
    assert {(s.asset, s.partition) for s in first.materialized()} >= {("function_pool", "marine"), ("function_pool", "orchard")}
    orchard_file = magnet_home / "storage" / "function_pool" / "orchard.parquet"
    orchard_mtime = orchard_file.stat().st_mtime_ns

    again = run_pipeline(settings, assets=["function_pool"])
    assert not again.materialized() and {s.status for s in again.steps} == {"skipped"}

    (tools_dir / "marine" / "specs.json").write_text(_spec("get_marine_status", "Status of the harbour, changed."))
    third = run_pipeline(settings, assets=["function_pool"])
    assert {(s.asset, s.partition) for s in third.materialized()} == {("function_pool", "marine"), ("tool_rejects", "marine")}
    assert orchard_file.stat().st_mtime_ns == orchard_mtime


def test_an_interrupted_run_resumes_with_only_what_failed(magnet_home, monkeypatch):
    import magnet_assets.pool as pool_assets

    tools_dir = magnet_home.parent / "tools"
    for cat in ("marine", "orchard"):
        (tools_dir / cat).mkdir(parents=True)
        (tools_dir / cat / "specs.json").write_text(_spec(f"get_{cat}_status", f"Status of the {cat}."))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    settings = load_settings(home=magnet_home, tools_dir=tools_dir)
    real_load = pool_assets.load_category

    def flaky(settings, category, *args, **kwargs):
        if category == "orchard":
            raise OSError("disk went away")
        return real_load(settings, category, *args, **kwargs)

    monkeypatch.setattr(pool_assets, "load_category", flaky)
    first = run_pipeline(settings, assets=["function_pool"])
    assert {(s.asset, s.partition) for s in first.failed} == {("function_pool", "orchard"), ("tool_rejects", "orchard")}
    assert "disk went away" in first.failed[0].error
    marine = magnet_home / "storage" / "function_pool" / "marine.parquet"
    marine_mtime = marine.stat().st_mtime_ns
    assert not (magnet_home / "storage" / "function_pool" / "orchard.parquet").exists()

    monkeypatch.setattr(pool_assets, "load_category", real_load)
    resumed = run_pipeline(settings, assets=["function_pool"])
    assert {(s.asset, s.partition) for s in resumed.materialized()} == {("function_pool", "orchard"), ("tool_rejects", "orchard")}
    assert marine.stat().st_mtime_ns == marine_mtime


def test_magnet_run_cli_prints_a_summary_and_exits_non_zero_on_failure(magnet_home, monkeypatch):
    from typer.testing import CliRunner

    import magnet_assets.pool as pool_assets
    from magnet_assets.cli import app

    tools_dir = magnet_home.parent / "tools"
    (tools_dir / "marine").mkdir(parents=True)
    (tools_dir / "marine" / "specs.json").write_text(_spec("get_marine_status", "Status of the harbour."))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    args = ["run", "--asset", "function_pool", "--home", str(magnet_home), "--tools-dir", str(tools_dir)]

    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "magnet run summary" in ok.output and "function_pool" in ok.output

    def broken(*args, **kwargs):
        raise ValueError("spec store unreachable")

    monkeypatch.setattr(pool_assets, "load_category", broken)
    failed = CliRunner().invoke(app, [*args, "--all"])
    assert failed.exit_code == 1
    assert "spec store unreachable" in failed.output and "failed" in failed.output
