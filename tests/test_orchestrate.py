"""Source observation, the category sensor and the headless run driven by Dagster's own
stale / missing status (code versions, data versions), with its failure semantics."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.definitions.observe import observe

import magnet_assets.graph as graph_assets
from magnet_assets import orchestrate
from magnet_assets.definitions import build_definitions
from magnet_assets.orchestrate import EndpointUnreachable, open_instance, probe_endpoint, run_pipeline, stale_or_missing
from magnet_assets.sources import category_sensor
from magnet_assets.versions import USES, code_version, module_closure
from magnet_lib.pool.function_pool import discover_categories
from magnet_lib.settings import LLMSettings, load_settings


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


@pytest.fixture
def two_categories(magnet_home, monkeypatch):
    """Two user categories, no built-ins, every run in this process (monkeypatches reach it)."""
    tools_dir = magnet_home.parent / "tools"
    for cat in ("marine", "orchard"):
        (tools_dir / cat).mkdir(parents=True)
        (tools_dir / cat / "specs.json").write_text(_spec(f"get_{cat}_status", f"Status of the {cat}."))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    monkeypatch.setenv("MAGNET_RUN_EXECUTOR", "in_process")
    return tools_dir


def _built(summary) -> set[tuple[str, str | None]]:
    return {(s.asset, s.partition) for s in summary.materialized()}


def test_incremental_run_rebuilds_only_the_changed_category(magnet_home, two_categories):
    tools_dir = two_categories
    settings = load_settings(home=magnet_home, tools_dir=tools_dir)

    first = run_pipeline(settings, assets=["function_pool"])
    assert not first.failed
    assert _built(first) == {(a, c) for a in ("function_pool", "tool_rejects") for c in ("marine", "orchard")}
    orchard_file = magnet_home / "storage" / "function_pool" / "orchard.parquet"
    orchard_mtime = orchard_file.stat().st_mtime_ns

    again = run_pipeline(settings, assets=["function_pool"])
    assert not again.materialized() and {s.status for s in again.steps} == {"skipped"}

    (tools_dir / "marine" / "specs.json").write_text(_spec("get_marine_status", "Status of the harbour, changed."))
    third = run_pipeline(settings, assets=["function_pool"])
    assert _built(third) == {("function_pool", "marine"), ("tool_rejects", "marine")}
    assert orchard_file.stat().st_mtime_ns == orchard_mtime


@pytest.mark.slow
def test_the_graph_is_partitioned_so_a_change_reaches_only_its_category(magnet_home, two_categories):
    """The same data after a rebuild (a spec file re-written with other whitespace) leaves
    everything after it fresh; a real change rebuilds exactly that category down to fsps, and
    the other category's nodes stay in the one Kuzu graph."""
    import graph_db

    tools_dir = two_categories
    settings = load_settings(home=magnet_home, tools_dir=tools_dir)
    first = run_pipeline(settings, assets=["fsps"])
    assert not first.failed, [(s.asset, s.partition, s.error) for s in first.failed]
    assert ("dependency_graph", "orchard") in _built(first)
    names = {f["name"] for f in graph_db.functions(settings.graph_path)}
    assert names == {"get_marine_status", "get_orchard_status"}

    spec = (tools_dir / "marine" / "specs.json").read_text()
    (tools_dir / "marine" / "specs.json").write_text(json.dumps(json.loads(spec), indent=4))
    same = run_pipeline(settings, assets=["fsps"])
    assert _built(same) == {("function_pool", "marine"), ("tool_rejects", "marine")}  # same content: nothing after it

    (tools_dir / "marine" / "specs.json").write_text(_spec("get_marine_tide", "Tide at the harbour."))
    changed = run_pipeline(settings, assets=["fsps"])
    assert {p for _, p in _built(changed)} == {"marine"}
    assert {a for a, _ in _built(changed)} >= {"function_pool", "dependency_edges", "dependency_graph", "fsps"}
    names = {f["name"] for f in graph_db.functions(settings.graph_path)}
    assert names == {"get_marine_tide", "get_orchard_status"}


def test_a_materialization_made_outside_magnet_run_counts(magnet_home, two_categories):
    """What the UI (or the dagster CLI) materializes is fresh for magnet run, and the other way round."""
    tools_dir = two_categories
    settings = load_settings(home=magnet_home, tools_dir=tools_dir)
    assert not run_pipeline(settings, assets=["function_pool"]).failed
    (tools_dir / "marine" / "specs.json").write_text(_spec("get_marine_status", "Status of the harbour, changed."))
    orchestrate.observe_sources(open_instance(settings), {"marine": orchestrate.discover_categories(settings)["marine"].version()})
    instance = open_instance(settings)
    defs = build_definitions(settings=settings)
    keys = [(dg.AssetKey("function_pool"), c) for c in ("marine", "orchard")]
    assert stale_or_missing(instance, defs, keys) == {keys[0]: "STALE", keys[1]: "FRESH"}
    # the UI's materialize action is an ordinary run of the same definitions on the same instance
    job = defs.resolve_implicit_global_asset_job_def()
    ui = job.execute_in_process(
        instance=instance, partition_key="marine", asset_selection=[dg.AssetKey("function_pool"), dg.AssetKey("tool_rejects")]
    )
    assert ui.success
    assert stale_or_missing(instance, defs, keys) == {keys[0]: "FRESH", keys[1]: "FRESH"}
    after = run_pipeline(settings, assets=["function_pool"])
    assert not after.materialized()


def test_prefetched_records_give_dagsters_own_statuses(magnet_home, two_categories):
    """The resolver reading the batched latest records decides exactly what it decides alone,
    on a home with a changed category (a new source version: STALE; a new upstream data
    version after a rebuild: STALE below it; never built: MISSING), in far fewer queries."""
    tools_dir = two_categories
    settings = load_settings(home=magnet_home, tools_dir=tools_dir)
    assert not run_pipeline(settings, assets=["dependency_edges"]).failed
    instance = open_instance(settings)
    defs = build_definitions(settings=settings)
    graph = defs.resolve_asset_graph()
    keys = [
        (k, c)
        for k in graph.toposorted_asset_keys
        if graph.get(k).is_materializable
        for c in (("marine", "orchard") if graph.get(k).partitions_def is not None else (None,))
    ]
    calls = {"n": 0}
    real = instance.fetch_materializations

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    instance.fetch_materializations = counted

    def both():
        calls["n"] = 0
        plain = stale_or_missing(instance, defs, keys, prefetch=False)
        plain_calls, calls["n"] = calls["n"], 0
        prefetched = stale_or_missing(instance, defs, keys, prefetch=True)
        assert prefetched == plain
        return plain, plain_calls, calls["n"]

    fresh, _, _ = both()
    assert fresh[(dg.AssetKey("dependency_edges"), "marine")] == "FRESH" and fresh[(dg.AssetKey("fsps"), "marine")] == "MISSING"
    (tools_dir / "marine" / "specs.json").write_text(_spec("get_marine_status", "Status of the harbour, changed."))
    orchestrate.observe_sources(instance, {"marine": orchestrate.discover_categories(settings)["marine"].version()})
    changed, _, _ = both()
    assert changed[(dg.AssetKey("function_pool"), "marine")] == "STALE"
    assert changed[(dg.AssetKey("function_pool"), "orchard")] == "FRESH"
    # the pool rebuilt with new data: its own partition fresh, the edges below it stale (a record after their cursor)
    job = defs.resolve_implicit_global_asset_job_def()
    pool_keys = [dg.AssetKey("function_pool"), dg.AssetKey("tool_rejects")]
    assert job.execute_in_process(instance=instance, partition_key="marine", asset_selection=pool_keys).success
    rebuilt, plain_calls, prefetched_calls = both()
    assert rebuilt[(dg.AssetKey("function_pool"), "marine")] == "FRESH"
    assert rebuilt[(dg.AssetKey("dependency_edges"), "marine")] == "STALE"
    assert rebuilt[(dg.AssetKey("dependency_edges"), "orchard")] == "FRESH"
    assert prefetched_calls < plain_calls / 2, (prefetched_calls, plain_calls)


def test_code_versions_cover_what_an_asset_uses_and_nothing_else(magnet_home):
    settings = load_settings(home=magnet_home)
    for asset, (modules, _) in USES.items():
        closure = module_closure(tuple(modules))
        assert not any(m.startswith(("magnet_assets", "magnet_lib.testing", "magnet_lib.pool.envs")) for m in closure), asset
    assert "magnet_lib.graph.walk" in module_closure(USES["fsps"][0])
    assert "magnet_lib.training.sft" not in module_closure(USES["fsps"][0])
    longer = load_settings(home=magnet_home, graph={"walk_length": 3})
    changed = {a for a in USES if code_version(a, settings) != code_version(a, longer)}
    assert "fsps" in changed and "augmented_fsps" in changed
    assert not changed & {"function_pool", "dependency_edges", "dependency_graph", "sft_checkpoint"}
    # the assets in the definitions carry them
    graph = build_definitions(settings=settings).resolve_asset_graph()
    assert graph.get(dg.AssetKey("fsps")).code_version == code_version("fsps", settings, orchestrate_source("fsps"))


def test_every_asset_has_a_code_version_of_what_it_uses(magnet_home):
    """No materializable asset is left without one (a code edit would go unnoticed), and the
    contamination report's follows its BFCL settings and modules only."""
    settings = load_settings(home=magnet_home)
    graph = build_definitions(settings=settings).resolve_asset_graph()
    materializable = {k.to_user_string() for k in graph.materializable_asset_keys}
    assert materializable <= set(USES)
    assert all(graph.get(dg.AssetKey(a)).code_version for a in materializable)
    assert "magnet_lib.evaluation.contamination" in module_closure(USES["contamination_report"][0])
    dropping = load_settings(home=magnet_home, bfcl={"drop_contaminated": "exact"})
    longer = load_settings(home=magnet_home, graph={"walk_length": 3})
    assert code_version("contamination_report", settings) != code_version("contamination_report", dropping)
    assert code_version("sft_set", settings) != code_version("sft_set", dropping)  # sft_set drops what the report flags
    assert code_version("contamination_report", settings) == code_version("contamination_report", longer)


def test_imports_found_by_pattern_are_those_a_full_parse_finds():
    """The code version reads only a module's import statements; over every project module
    they name what walking the whole syntax tree names (a module may name itself in a
    docstring's example, which changes nothing)."""
    import ast

    from magnet_assets import versions

    checked = 0
    for path in sorted(p for pkg in versions.PROJECT_PACKAGES for p in (versions.ROOT / pkg).rglob("*.py")):
        parts = list(path.relative_to(versions.ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        expected = versions.imported_modules(ast.walk(ast.parse(path.read_text(encoding="utf-8"))), package)
        assert versions._imports(name, path) - {name} == expected - {name}, name
        checked += 1
    assert checked > 50


def orchestrate_source(asset: str) -> str:
    import inspect

    return inspect.getsource(getattr(graph_assets, asset).op.compute_fn.decorated_fn)


@pytest.mark.slow
def test_run_pipeline_honours_every_setting(magnet_home, two_categories):
    settings = load_settings(home=magnet_home, tools_dir=two_categories, graph={"walk_length": 2, "min_turns": 1})
    assert not run_pipeline(settings, assets=["fsps"]).failed
    import polars as pl

    walks = pl.read_parquet(magnet_home / "storage" / "fsps" / "marine.parquet")
    assert walks.height and all(len(p) <= 2 for p in walks["path"].to_list())
    resource = build_definitions(settings=settings).resources["magnet"]
    assert resource.graph.walk_length == 2 and resource.settings.graph.walk_length == 2


@pytest.mark.slow
def test_a_failed_blocking_check_fails_the_run_and_runs_again(magnet_home, two_categories, monkeypatch):
    settings = load_settings(home=magnet_home, tools_dir=two_categories)
    monkeypatch.setattr(graph_assets, "walk_violations", lambda walks, adjacency: ["a step that is not an edge"])
    failed = run_pipeline(settings, assets=["fsps"])
    # the asset and its blocking check are both reported failed, per category
    assert {(s.asset, s.partition) for s in failed.failed} == {
        (name, part) for name in ("fsps", "fsps:fsp_steps_are_graph_edges") for part in ("marine", "orchard")
    }
    assert all("fsp_steps_are_graph_edges" in s.error for s in failed.failed)
    assert not (magnet_home / "storage" / "fsps" / "marine.parquet").exists()
    monkeypatch.undo()
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    monkeypatch.setenv("MAGNET_RUN_EXECUTOR", "in_process")
    again = run_pipeline(settings, assets=["fsps"])
    assert _built(again) == {("fsps", "marine"), ("fsps", "orchard")}


def test_an_interrupted_run_resumes_with_only_what_failed(magnet_home, two_categories, monkeypatch):
    import magnet_assets.pool as pool_assets

    settings = load_settings(home=magnet_home, tools_dir=two_categories)
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
    assert _built(resumed) == {("function_pool", "orchard"), ("tool_rejects", "orchard")}
    assert marine.stat().st_mtime_ns == marine_mtime


def test_runs_left_started_by_a_dead_process_are_marked_failed(magnet_home):
    settings = load_settings(home=magnet_home)
    instance = open_instance(settings)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = dg.DagsterRun(
        job_name="magnet_assets_job",
        run_id="0" * 8 + "-dead-run",
        status=dg.DagsterRunStatus.STARTED,
        tags={orchestrate.PID_TAG: str(dead.pid), orchestrate.HOST_TAG: socket.gethostname()},
    )
    instance.add_run(run)
    assert orchestrate.mark_dead_runs(instance) == [run.run_id]
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def _open_instance_in_a_process(home: str) -> None:
    open_instance(load_settings(home=home))


def test_two_processes_creating_the_instance_at_once_leave_one_schema(magnet_home):
    import multiprocessing
    import sqlite3

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_instance_in_a_process, args=(str(magnet_home),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db = sqlite3.connect(magnet_home / "dagster" / "history" / "runs.db")
    assert db.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    open_instance(load_settings(home=magnet_home)).get_runs(limit=1)


def test_an_unreachable_model_endpoint_stops_the_run_before_any_step(magnet_home, two_categories):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    llm = LLMSettings(model="openai/test", api_base=f"http://127.0.0.1:{port}/v1", api_key="sk-test", timeout_s=2)
    with pytest.raises(EndpointUnreachable, match="cannot be reached"):
        probe_endpoint(llm)
    # a server that accepts and never answers
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen()
        slow = LLMSettings(model="openai/test", api_base=f"http://127.0.0.1:{hanging.getsockname()[1]}/v1", timeout_s=1)
        with pytest.raises(EndpointUnreachable):
            probe_endpoint(slow)
    settings = load_settings(home=magnet_home, tools_dir=two_categories, llm=llm)
    with pytest.raises(EndpointUnreachable):
        run_pipeline(settings, assets=["dependency_edges"])
    assert not (magnet_home / "storage" / "function_pool").exists()


def test_automation_conditions_request_only_the_changed_category(magnet_home, two_categories, monkeypatch):
    monkeypatch.setenv("MAGNET_RUN_AUTOMATION", "true")
    settings = load_settings(home=magnet_home, tools_dir=two_categories)
    assert not run_pipeline(settings, assets=["function_pool"]).failed
    defs = build_definitions(settings=settings)
    instance = open_instance(settings)
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    (two_categories / "marine" / "specs.json").write_text(_spec("get_marine_status", "Status of the harbour, changed."))
    orchestrate.observe_sources(instance, {c: s.version() for c, s in orchestrate.discover_categories(settings).items()})
    changed = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=quiet.cursor)
    requested = changed.get_requested_partitions(dg.AssetKey("function_pool"))
    assert requested == {"marine"}


def test_magnet_ui_stops_its_whole_process_group_on_sigterm(tmp_path):
    pids = tmp_path / "pids"
    code = (
        "import os, subprocess, sys, time\n"
        "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{kid.pid}}')\n"
        "time.sleep(120)\n"
    )
    wrapper = (
        "import os, sys\n"
        "from magnet_assets.cli import serve\n"
        f"sys.exit(serve([sys.executable, '-c', {code!r}], dict(os.environ), '.', grace_s=2))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", wrapper], env=dict(os.environ))
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    children = [int(p) for p in pids.read_text().split()]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    time.sleep(0.5)
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_magnet_run_cli_prints_a_summary_and_exits_non_zero_on_failure(magnet_home, monkeypatch):
    from typer.testing import CliRunner

    import magnet_assets.pool as pool_assets
    from magnet_assets.cli import app

    tools_dir = magnet_home.parent / "tools"
    (tools_dir / "marine").mkdir(parents=True)
    (tools_dir / "marine" / "specs.json").write_text(_spec("get_marine_status", "Status of the harbour."))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    monkeypatch.setenv("MAGNET_RUN_EXECUTOR", "in_process")
    args = ["run", "--asset", "function_pool", "--home", str(magnet_home), "--tools-dir", str(tools_dir)]

    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "magnet run summary" in ok.output and "function_pool" in ok.output
    # the two assets of one step: one line, one time; the outputs are named at the end
    assert ok.output.count("function_pool+tool_rejects[marine]") == 1
    assert "outputs:" in ok.output and "elapsed" in ok.output

    def broken(*args, **kwargs):
        raise ValueError("spec store unreachable")

    monkeypatch.setattr(pool_assets, "load_category", broken)
    failed = CliRunner().invoke(app, [*args, "--all"])
    assert failed.exit_code == 1
    assert "spec store unreachable" in failed.output and "failed" in failed.output


@pytest.fixture
def orchard(magnet_home, monkeypatch):
    """One user category of four linked tools (walks, episodes, an SFT mix), every run in
    this process."""
    from tests.test_incremental import ORCHARD

    tools_dir = magnet_home.parent / "tools"
    (tools_dir / "orchard").mkdir(parents=True)
    (tools_dir / "orchard" / "orchard.json").write_text(json.dumps(ORCHARD))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    monkeypatch.setenv("MAGNET_RUN_EXECUTOR", "in_process")
    return tools_dir


@pytest.mark.slow
def test_a_lint_that_failed_blocking_runs_again_on_its_own(magnet_home, orchard):
    """sft_set_lint is a check outside the asset: sft_set stays fresh when it fails, so only
    the check's own failure brings it back, on its own, until it passes (or only warns)."""
    strict = load_settings(home=magnet_home, tools_dir=orchard, lint={"blocking": ["user_turns_per_multi_turn"]})
    first = run_pipeline(strict, assets=["sft_set"])
    assert ("sft_set", None) in _built(first)
    assert [(s.asset, s.status) for s in first.failed] == [("sft_set:sft_set_lint", "failed")]

    again = run_pipeline(strict, assets=["sft_set"])  # same data, same thresholds: fails again, nothing rebuilt
    assert not again.materialized()
    assert [(s.asset, s.status) for s in again.failed] == [("sft_set:sft_set_lint", "failed")]

    relaxed = load_settings(home=magnet_home, tools_dir=orchard)  # the figure only warns now
    third = run_pipeline(relaxed, assets=["sft_set"])
    assert not third.materialized() and not third.failed
    assert [(s.asset, s.status) for s in third.steps if s.status != "skipped"] == [("sft_set:sft_set_lint", "checked")]
    assert not [s for s in run_pipeline(relaxed, assets=["sft_set"]).steps if s.status != "skipped"]  # a warning is not retried


def test_a_home_named_on_the_command_line_reads_its_own_settings_file(magnet_home, tmp_path, monkeypatch):
    """`magnet ... --home H` (load_settings(home=H)) takes H/magnet.toml, not $MAGNET_HOME's;
    $MAGNET_CONFIG still names the file when set."""
    other = tmp_path / "other_home"
    other.mkdir()
    (other / "magnet.toml").write_text("[graph]\nwalk_length = 3\n")
    magnet_home.mkdir(parents=True, exist_ok=True)
    (magnet_home / "magnet.toml").write_text("[graph]\nwalk_length = 5\n")
    assert load_settings().graph.walk_length == 5
    assert load_settings(home=other).graph.walk_length == 3
    assert load_settings().graph.walk_length == 5  # the home named once does not stick
    from magnet_assets.cli import _settings

    assert _settings(home=other).graph.walk_length == 3
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[graph]\nwalk_length = 4\n")
    monkeypatch.setenv("MAGNET_CONFIG", str(explicit))
    assert load_settings(home=other).graph.walk_length == 4


def _variable_in_worker(name: str, environment: dict[str, str] | None) -> str | None:
    from magnet_assets.orchestrate import _adopt

    if environment is not None:
        _adopt(environment)
    return os.environ.get(name)


def test_category_workers_run_under_the_environment_of_the_call_that_submits(monkeypatch):
    """The forkserver is started once per process, with the variables of that moment; a later
    run_pipeline in the same process (a notebook, a test suite) sends its own with each run."""
    from magnet_assets.orchestrate import _environment, _worker_pool

    monkeypatch.setenv("MAGNET_PROBE_VARIABLE", "first")
    first = _worker_pool(1)  # starts the forkserver unless an earlier call did (then without the variable)
    assert first.submit(_variable_in_worker, "MAGNET_PROBE_VARIABLE", None).result(60) in ("first", None)
    first.shutdown()
    monkeypatch.setenv("MAGNET_PROBE_VARIABLE", "second")
    monkeypatch.setenv("MAGNET_OTHER_PROBE", "set")
    second = _worker_pool(1)
    try:
        assert second.submit(_variable_in_worker, "MAGNET_PROBE_VARIABLE", None).result(60) != "second"  # the fork's stale copy
        assert second.submit(_variable_in_worker, "MAGNET_PROBE_VARIABLE", _environment()).result(60) == "second"
        monkeypatch.delenv("MAGNET_OTHER_PROBE")
        assert second.submit(_variable_in_worker, "MAGNET_OTHER_PROBE", _environment()).result(60) is None
    finally:
        second.shutdown()


def test_a_waves_category_runs_go_longest_first_by_their_last_run(magnet_home):
    """The workers take a wave's category runs longest first, by how long each partition's
    latest run took (a fresh home has none: by name)."""
    import time as _time

    parts = dg.StaticPartitionsDefinition(["slow", "quick"])

    @dg.asset(partitions_def=parts)
    def paced(context):
        _time.sleep(0.4 if context.partition_key == "slow" else 0.0)
        return 1

    instance = open_instance(load_settings(home=magnet_home))
    assert orchestrate._last_run_seconds(instance, ["slow", "quick"]) == {}
    for part in ("quick", "slow"):
        dg.materialize([paced], instance=instance, partition_key=part)
    last = orchestrate._last_run_seconds(instance, ["quick", "slow", "never"])
    assert set(last) == {"quick", "slow"} and last["slow"] > last["quick"] + 0.3


def _preloaded_in_worker() -> tuple[bool, bool, bool, bool]:
    import gc
    import sys

    from magnet_assets.forkserver import GEN0_THRESHOLD
    from magnet_lib.pool.envs import builtin_environments

    loaded = "magnet_assets.definitions" in sys.modules and "pyarrow" in sys.modules  # before anything ran here
    envs = builtin_environments()  # the forkserver's cache, inherited by the fork
    collector = gc.get_freeze_count() > 0 and gc.get_threshold()[0] >= GEN0_THRESHOLD  # the imports frozen, fewer young collections
    return loaded, all("_magnet_specs" in e.__dict__ for e in envs.values()), "pandas" in sys.modules, collector


def test_the_workers_fork_from_a_server_with_the_project_and_its_tool_specs_loaded(tmp_path):
    """``magnet run`` starts the forkserver early on a fresh home only (multiprocess, two
    workers or more); a worker finds the project imported and the built-in tool specs built."""
    from magnet_assets import forkserver

    fresh, used = tmp_path / "fresh" / "dagster", tmp_path / "used" / "dagster"
    (used / "history").mkdir(parents=True)
    (used / "history" / "runs.db").write_bytes(b"")
    assert not forkserver.start_early("multiprocess", 2, used)  # runs recorded: maybe one category to run
    assert not forkserver.start_early("in_process", 2, fresh)
    assert not forkserver.start_early("multiprocess", 1, fresh)
    assert forkserver.start_early("multiprocess", 2, fresh)
    workers = orchestrate._Workers(1, json.dumps({}), str(tmp_path / "fresh"))  # started in a thread
    try:
        assert workers.get().submit(_preloaded_in_worker).result(120) == (True, True, True, True)  # pandas: Kuzu's first query
    finally:
        workers.shutdown()


def test_the_cli_leaves_its_objects_to_the_end_of_the_process(monkeypatch):
    """``magnet`` freezes the garbage collector's objects when its command ends: the teardown
    does not walk Dagster's and pydantic's object graph (over a second of a no-op run)."""
    import gc

    from magnet_assets import cli

    gc.unfreeze()
    monkeypatch.setattr("sys.argv", ["magnet", "--help"])
    try:
        with pytest.raises(SystemExit):
            cli.main()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
