"""Headless materialization on the persistent Dagster instance: what ``magnet run`` calls.

There is no bookkeeping of our own here. Dagster's stale status (the UI's "Unsynced": a new
code version, a new data version of an upstream partition) and missing status decide what
runs, with the same resolver the UI uses, so a materialization made in the UI, with the
``dagster`` CLI or by ``magnet run`` counts for all of them.

``run_pipeline`` works in waves: each wave materializes the stale or missing asset
partitions none of whose upstream is stale or missing (plus the missing ones right after them
in the same partition), one Dagster run per category partition, the runs side by side
(bounded by the machine's cores), each on the configured executor (multiprocess by default).
Then it asks Dagster again: a rebuild that produced the same data (same data version) leaves
the assets after it fresh, so they are not run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from magnet_assets.definitions import build_definitions, cores
from magnet_assets.resources import resource_values
from magnet_lib.pool.function_pool import discover_categories
from magnet_lib.settings import LLMSettings, MagnetSettings

SOURCE_KEY = dg.AssetKey("tool_sources")
PID_TAG = "magnet/pid"
HOST_TAG = "magnet/host"
DATA_VERSION_TAG = "dagster/data_version"  # the tag Dagster keeps an observation's data version in

Key = tuple[dg.AssetKey, str | None]


@dataclass
class Step:
    asset: str
    partition: str | None
    status: str  # materialized | skipped | failed | blocked
    seconds: float = 0.0
    error: str | None = None
    step_key: str | None = None  # assets materialized by one step share it (and its time)
    run_id: str | None = None
    llm: dict = field(default_factory=dict)  # calls, failures, rejects of the step's model calls
    shares: list[str] = field(default_factory=list)  # every asset the step materialized (itself included)


@dataclass
class RunSummary:
    steps: list[Step] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status in ("failed", "blocked")]

    def materialized(self, asset: str | None = None) -> list[Step]:
        return [s for s in self.steps if s.status == "materialized" and (asset is None or s.asset == asset)]


class EndpointUnreachable(RuntimeError):
    """The configured model endpoint did not answer the probe at the start of a run."""


# --------------------------------------------------------------------------- the instance

DAGSTER_YAML = """\
telemetry:
  enabled: false
# runs launched from the UI (a backfill over every partition) queue: at most one per core
concurrency:
  runs:
    max_concurrent_runs: {runs}
  # the `kuzu` pool (every write to graph.kuzu) and any other pool: one step at a time
  pools:
    default_limit: 1
# the daemon marks runs whose process died as failed
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
"""


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_instance(settings: MagnetSettings) -> dg.DagsterInstance:
    """The persistent instance under ``$MAGNET_HOME/dagster``. Creation (the settings file and
    the storage's schema) happens under a file lock, so two processes starting on a fresh
    home do not both create the schema."""
    home = settings.dagster_home.resolve()
    with _file_lock(home.parent / ".dagster.lock"):
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():
            config.write_text(DAGSTER_YAML.format(runs=settings.run.max_concurrent or max(2, cores())))
        os.environ.setdefault("DAGSTER_HOME", str(home))
        instance = dg.DagsterInstance.from_config(str(home))
        instance.get_runs(limit=1)  # touches (and migrates) the run storage while the lock is held
    return instance


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Runs a killed ``magnet run`` left STARTED (or STARTING): reported failed. Only runs this
    host started, whose process is gone."""
    dead = []
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]))
    for run in runs:
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if pid and host == socket.gethostname() and int(pid) != os.getpid() and not _alive(int(pid)):
            instance.report_run_failed(run, f"the process that ran it ({pid}) is gone (killed?); marked failed by magnet run")
            dead.append(run.run_id)
    return dead


def observe_sources(instance: dg.DagsterInstance, versions: dict[str, str]) -> list[str]:
    """Record each category's source version as an observation of ``tool_sources`` (only when
    it differs from the last one); add a partition for every new category. Returns the
    categories whose version changed."""
    existing = set(instance.get_dynamic_partitions("category"))
    new = sorted(set(versions) - existing)
    if new:
        instance.add_dynamic_partitions("category", new)
    changed = []
    for cat, version in versions.items():
        records = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=SOURCE_KEY, asset_partitions=[cat]), limit=1).records
        last = records[0].asset_observation.tags.get(DATA_VERSION_TAG) if records and records[0].asset_observation else None
        if last != version:
            instance.report_runless_asset_event(dg.AssetObservation(asset_key=SOURCE_KEY, partition=cat, tags={DATA_VERSION_TAG: version}))
            changed.append(cat)
    return changed


# --------------------------------------------------------------------------- Dagster's stale status


def stale_or_missing(instance: dg.DagsterInstance, defs: dg.Definitions, keys: list[Key]) -> dict[Key, str]:
    """Dagster's own status of each asset partition ('MISSING', 'STALE' or 'FRESH'): the
    resolver behind the UI's Unsynced / Missing marks (Dagster has no public entry point to
    it; this is the one place we reach into ``dagster._core``)."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._time import get_current_datetime

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None), instance=instance, asset_graph=graph
    )
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    return {(k, p): resolver.get_status(k, p).value for k, p in keys}


# --------------------------------------------------------------------------- the model endpoint


def probe_endpoint(llm: LLMSettings, timeout_s: float = 10.0) -> None:
    """Ask the configured endpoint once; raise :class:`EndpointUnreachable` with a clear
    message when nothing answers (nothing listening, or every request hanging)."""
    if llm.offline:
        return
    timeout = min(timeout_s, llm.timeout_s)
    try:
        if llm.api_base:
            import httpx

            headers = {"Authorization": f"Bearer {llm.api_key.get_secret_value()}"} if llm.api_key else {}
            httpx.get(f"{llm.api_base.rstrip('/')}/models", timeout=timeout, headers=headers)
        else:
            import litellm

            key = llm.api_key.get_secret_value() if llm.api_key else None
            litellm.completion(
                model=llm.model, messages=[{"role": "user", "content": "ping"}], max_tokens=1, timeout=timeout, num_retries=0, api_key=key
            )
    except Exception as exc:  # only a connection failure or a timeout means unreachable
        text = f"{type(exc).__name__}: {exc}"
        if any(word in text.lower() for word in ("connect", "timeout", "timed out", "unreachable", "refused", "name or service")):
            where = llm.api_base or llm.model
            raise EndpointUnreachable(
                f"the model endpoint {where} cannot be reached ({text[:200]}); start the server or fix llm.api_base / llm.model "
                "(magnet.toml or MAGNET_LLM_*), or unset llm.model to run offline"
            ) from None


# --------------------------------------------------------------------------- the plan


class _Graph:
    def __init__(self, defs: dg.Definitions, categories: list[str], wanted: set[dg.AssetKey]):
        self.graph = defs.resolve_asset_graph()
        self.order = [k for k in self.graph.toposorted_asset_keys if k in wanted]
        self.categories = categories
        self.partitioned = {k: self.graph.get(k).partitions_def is not None for k in self.order}
        self.siblings = {k: set(self.graph.get(k).execution_set_asset_keys) for k in self.order}

    def targets(self) -> list[Key]:
        return [(k, c) for k in self.order for c in (self.categories if self.partitioned[k] else [None])]

    def parents(self, key: Key) -> list[Key]:
        asset, part = key
        out = []
        for p in self.graph.get(asset).parent_keys:
            if p not in self.partitioned:
                continue
            if self.partitioned[p]:
                out.extend([(p, part)] if part is not None else [(p, c) for c in self.categories])
            else:
                out.append((p, None))
        return out

    def descendants(self, keys: set[Key]) -> set[Key]:
        out: set[Key] = set()
        for key in self.targets():  # topological order: parents first
            if any(p in keys or p in out for p in self.parents(key)):
                out.add(key)
        return out


def _wave(g: _Graph, todo: dict[Key, str]) -> dict[str | None, set[dg.AssetKey]]:
    """The runs of the next wave, by partition: the asset partitions to do none of whose
    parents is to do, then the missing ones whose every parent to do runs in the same run."""
    chosen: set[Key] = {k for k in todo if not any(p in todo for p in g.parents(k))}
    grew = True
    while grew:
        grew = False
        for key in g.targets():
            if key in todo and key not in chosen and todo[key] == "MISSING":
                parents = [p for p in g.parents(key) if p in todo]
                if parents and all(p in chosen and p[1] == key[1] for p in parents):
                    chosen.add(key)
                    grew = True
    runs: dict[str | None, set[dg.AssetKey]] = {}
    for asset, part in chosen:
        runs.setdefault(part, set()).update(g.siblings[asset] & set(g.order))
    return runs


# --------------------------------------------------------------------------- running


def _reconstructable(settings_json: str, executor: str | None = None):
    kwargs = {"settings_json": settings_json}
    if executor:
        kwargs["executor"] = executor
    return dg.build_reconstructable_job("magnet_assets.definitions", "magnet_job", reconstructable_kwargs=kwargs)


def _execute_in_worker(settings_json: str, dagster_home: str, assets: set[dg.AssetKey], part: str | None, log_level: str):
    """One partition's run in a worker process (the run's steps in that process)."""
    instance = dg.DagsterInstance.from_config(dagster_home)
    return _execute(_reconstructable(settings_json, "in_process"), instance, assets, part, log_level)


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a server that has the project imported (fast to start).
    Dagster's run execution is not thread-safe (its log set-up reconfigures ``logging``), so
    category runs go side by side in processes, not threads."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["magnet_assets.definitions"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _step_times(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Seconds per step, from the run's event log."""
    start: dict[str, float] = {}
    out: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        e = entry.dagster_event
        if e is None or e.step_key is None:
            continue
        if e.event_type_value == "STEP_START":
            start[e.step_key] = entry.timestamp
        elif e.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and e.step_key in start:
            out[e.step_key] = entry.timestamp - start[e.step_key]
    return out


def _error_of(event) -> str:
    error = event.step_failure_data.error
    while error is not None and error.cause is not None and "dagster" in (error.cls_name or "").lower():
        error = error.cause
    return f"{event.step_key}: {(error.message or '').strip()}" if error is not None else f"{event.step_key} failed"


def _run_failure(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The message of a run that failed outside any step (executor, resources, pools)."""
    for entry in instance.all_logs(run_id):
        e = entry.dagster_event
        if e is not None and e.event_type_value in ("PIPELINE_FAILURE", "ENGINE_EVENT") and e.event_specific_data is not None:
            error = getattr(e.event_specific_data, "error", None)
            if error is not None:
                return f"run failed: {(error.message or '').strip()[:500]}"
    return None


def _llm_counts(metadata) -> dict:
    out = {}
    for name in ("calls", "failures", "rejects", "items"):
        value = metadata.get(f"llm/{name}")
        if value is not None:
            out[name] = int(getattr(value, "value", value) or 0)
    return out


def _execute(recon, instance, assets: set[dg.AssetKey], part: str | None, log_level: str) -> tuple[str, list[Step]]:
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    if part is not None:
        tags["dagster/partition"] = part
    steps: list[Step] = []
    try:
        run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
        with dg.execute_job(recon, instance=instance, tags=tags, asset_selection=sorted(assets, key=str), run_config=run_config) as result:
            events = result.all_events
            run_id = result.run_id
    except Exception as exc:  # a definition error still ends in a summary, not a traceback
        return "", [Step(a.to_user_string(), part, "failed", error=f"{type(exc).__name__}: {exc}") for a in sorted(assets, key=str)]
    times = _step_times(instance, run_id)
    failures = {e.step_key: _error_of(e) for e in events if e.event_type_value == "STEP_FAILURE"}
    done: dict[dg.AssetKey, tuple[str, dict]] = {}
    for e in events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            m = e.event_specific_data.materialization
            done[m.asset_key] = (e.step_key, _llm_counts(m.metadata))
    first_error = next(iter(failures.values()), None) or _run_failure(instance, run_id)
    by_step: dict[str, list[str]] = {}
    for asset, (step_key, _) in sorted(done.items(), key=lambda kv: str(kv[0])):
        by_step.setdefault(step_key, []).append(asset.to_user_string())
    for asset in sorted(assets, key=str):
        name = asset.to_user_string()
        if asset in done:
            step_key, llm = done[asset]
            steps.append(
                Step(
                    name,
                    part,
                    "materialized",
                    times.get(step_key, 0.0),
                    step_key=step_key,
                    run_id=run_id,
                    llm=llm,
                    shares=by_step[step_key],
                )
            )
        else:
            step_key = next((k for k in failures if name in k), None)
            if step_key is not None:
                steps.append(Step(name, part, "failed", times.get(step_key, 0.0), failures[step_key], step_key=step_key, run_id=run_id))
            else:
                steps.append(Step(name, part, "blocked", error=f"not run: {first_error or 'an upstream step failed'}", run_id=run_id))
    return run_id, steps


def run_pipeline(
    settings: MagnetSettings,
    *,
    force: bool = False,
    assets: list[str] | None = None,
    categories: list[str] | None = None,
    on_step: Callable[[Step], None] | None = None,
    log_level: str = "WARNING",
) -> RunSummary:
    """Materialize the stale or missing asset partitions (everything once with ``force``).

    ``assets`` limits the run to these assets and their upstream; ``categories`` to these
    partitions. Every field of ``settings`` reaches the assets (resource configuration)."""
    started = time.perf_counter()
    instance = open_instance(settings)
    mark_dead_runs(instance)
    defs = build_definitions(settings=settings)
    graph = defs.resolve_asset_graph()
    all_keys = {k for k in graph.get_all_asset_keys() if k != SOURCE_KEY and graph.get(k).is_materializable}
    wanted = set(all_keys)
    if assets:
        targets = {dg.AssetKey(a) for a in assets}
        unknown = targets - all_keys
        if unknown:
            raise KeyError(f"unknown asset(s): {', '.join(sorted(k.to_user_string() for k in unknown))}")
        wanted = set(targets)
        wanted |= _ancestors(graph, targets, all_keys)
        wanted |= {s for k in wanted for s in graph.get(k).execution_set_asset_keys}  # a multi-asset runs whole
    sources = discover_categories(settings)
    versions = {cat: sources[cat].version() for cat in sorted(sources)}
    observe_sources(instance, versions)
    run_categories = [c for c in versions if not categories or c in categories]
    g = _Graph(defs, run_categories, wanted)
    settings_json = json.dumps(resource_values(settings), default=str)
    recon = _reconstructable(settings_json)
    in_process = _reconstructable(settings_json, "in_process")

    def recon_for(keys: set[dg.AssetKey]):
        """A run of one or two steps gains nothing from step processes (a fork, a job and its
        resources rebuilt per step): it runs in this process; larger runs on the executor."""
        steps = {frozenset(g.siblings.get(k, {k})) for k in keys}
        return in_process if settings.run.executor == "multiprocess" and len(steps) <= 2 else recon

    # category runs side by side in worker processes, each run's steps in its worker; the
    # unpartitioned runs (one at a time) on the configured executor in this process. With
    # the in_process executor (tests) or dask (steps on the cluster) every run is made here.
    limit = settings.run.max_concurrent or cores()
    fan_out = settings.run.executor == "multiprocess" and limit > 1
    pool = None

    summary = RunSummary()
    settled: set[Key] = set()  # built, failed or blocked in this call
    forced = set(g.targets()) if force else set()
    probed = False
    while True:
        status = stale_or_missing(instance, defs, [k for k in g.targets() if k not in settled])
        todo = {k: ("MISSING" if k in forced else s) for k, s in status.items() if s != "FRESH" or k in forced}
        if not todo:
            break
        if not probed:
            probe_endpoint(settings.llm)
            probed = True
        runs = _wave(g, todo)
        failed: set[Key] = set()
        partitioned = [(part, keys) for part, keys in runs.items() if part is not None]
        results = []
        if fan_out and len(partitioned) > 1:
            pool = pool or _worker_pool(limit)
            home = str(settings.dagster_home.resolve())
            futures = [pool.submit(_execute_in_worker, settings_json, home, keys, part, log_level) for part, keys in partitioned]
            results = (f.result() for f in as_completed(futures))
        else:
            results = (_execute(recon_for(keys), instance, keys, part, log_level) for part, keys in partitioned)
        tail = [_execute(recon_for(keys), instance, keys, None, log_level) for part, keys in runs.items() if part is None]
        for run_id, steps in [*results, *tail]:
            if run_id:
                summary.run_ids.append(run_id)
            for step in steps:
                key = (dg.AssetKey(step.asset), step.partition)
                settled.add(key)
                forced.discard(key)
                if step.status != "materialized":
                    failed.add(key)
                summary.steps.append(step)
                if on_step:
                    on_step(step)
        for key in sorted(g.descendants(failed) - settled, key=lambda k: (g.order.index(k[0]), k[1] or "")):
            settled.add(key)
            forced.discard(key)
            step = Step(key[0].to_user_string(), key[1], "blocked", error="an upstream asset failed")
            summary.steps.append(step)
            if on_step:
                on_step(step)
    if pool is not None:
        pool.shutdown()
    for asset, part in g.targets():
        if (asset, part) not in settled:
            step = Step(asset.to_user_string(), part, "skipped")
            summary.steps.append(step)
            if on_step:
                on_step(step)
    summary.seconds = time.perf_counter() - started
    return summary


def _ancestors(graph, targets: set[dg.AssetKey], keys: set[dg.AssetKey]) -> set[dg.AssetKey]:
    seen: set[dg.AssetKey] = set()
    stack = list(targets)
    while stack:
        k = stack.pop()
        for p in graph.get(k).parent_keys:
            if p in keys and p not in seen:
                seen.add(p)
                stack.append(p)
    return seen
