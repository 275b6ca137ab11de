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
import functools
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from magnet_assets import forkserver, sqlite_sync
from magnet_assets.definitions import build_definitions, magnet_job
from magnet_assets.forkserver import cores
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
    status: str  # materialized | skipped | failed | blocked | checked (a check run again on its own)
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

#: Dagster's SQLite storage with its connections kept open (magnet_assets.dagster_storage), in
#: Dagster's default places under the Dagster home (history/runs.db, history/runs/, schedules/);
#: written into a settings file that names no storage, with this home's path
STORAGE_YAML = """# Dagster's SQLite storage (history/, schedules/), connections kept open: magnet_assets/dagster_storage.py
storage:
  custom:
    module: magnet_assets.dagster_storage
    class: PooledSqliteStorage
    config:
      base_dir: {base_dir}
"""
_STORAGE_KEYS = re.compile(r"^(storage|run_storage|event_log_storage|schedule_storage)\s*:", re.MULTILINE)
_POOLED_BASE = re.compile(r"^(\s+class: PooledSqliteStorage\n\s+config:\n\s+base_dir: )(.*)$", re.MULTILINE)


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _with_pooled_storage(config: Path, home: Path) -> None:
    """Select the pooled SQLite storage in a settings file that names no storage of its own
    (one made by an earlier version, too: the files stay where they are), and keep its path
    this home's when the home was moved or copied."""
    text = config.read_text(encoding="utf-8")
    found = _POOLED_BASE.search(text)
    if found is None and not _STORAGE_KEYS.search(text):
        config.write_text(text.rstrip("\n") + "\n" + STORAGE_YAML.format(base_dir=json.dumps(str(home))), encoding="utf-8")
    elif found is not None and found.group(2).strip() != json.dumps(str(home)):
        config.write_text(text[: found.start(2)] + json.dumps(str(home)) + text[found.end(2) :], encoding="utf-8")


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
        _with_pooled_storage(config, home)
        os.environ.setdefault("DAGSTER_HOME", str(home))
        sqlite_sync.register(home, settings.run.sqlite_sync)
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


class LatestRecords:
    """The instance as Dagster's stale resolver sees it, with the latest materialization (and,
    for observable sources, observation) of every partition of the given assets read up front:
    two queries per asset (the latest storage id of each partition, then those records)
    instead of one or two per asset partition. Every other call goes to the instance.

    The resolver's questions about one partition's latest record ("the latest", "the latest
    after storage id N", "the latest before N") are answered from the snapshot when it holds
    the answer, which is the answer the storage would give; anything else (a query over
    several partitions, a paged one, one before an older record) is asked of the instance."""

    def __init__(self, instance: dg.DagsterInstance, graph, assets):
        from dagster._core.events import DagsterEventType

        self._instance = instance
        self._latest: dict[tuple[str, dg.AssetKey], dict[str, object]] = {}
        self.queries = 0  # the snapshot's own queries
        kinds = {"materialization": DagsterEventType.ASSET_MATERIALIZATION, "observation": DagsterEventType.ASSET_OBSERVATION}
        for asset in assets:
            node = graph.get(asset)
            if node.partitions_def is None:
                continue  # Dagster reads those from the asset records, in one batch already
            wanted = ["materialization"] + (["observation"] if node.is_observable or node.is_external else [])
            for kind in wanted:
                ids = instance.get_latest_storage_id_by_partition(asset, event_type=kinds[kind])
                fetch = instance.fetch_materializations if kind == "materialization" else instance.fetch_observations
                records = (
                    fetch(dg.AssetRecordsFilter(asset_key=asset, storage_ids=list(ids.values())), limit=len(ids)).records if ids else []
                )
                by_id = {r.storage_id: r for r in records}
                self._latest[(kind, asset)] = {part: by_id[sid] for part, sid in ids.items() if sid in by_id}
                self.queries += 2 if ids else 1
                if len(by_id) != len(ids):  # a record gone between the two queries: ask the instance for this asset
                    del self._latest[(kind, asset)]

    def __getattr__(self, name):
        return getattr(self._instance, name)

    _MISS = object()

    def _answer(self, kind: str, records_filter, limit: int, cursor, ascending: bool):
        if cursor is not None or ascending or limit != 1 or not isinstance(records_filter, dg.AssetRecordsFilter):
            return self._MISS
        f = records_filter
        if f.storage_ids is not None or f.after_timestamp is not None or f.before_timestamp is not None:
            return self._MISS
        if not f.asset_partitions or len(f.asset_partitions) != 1 or (kind, f.asset_key) not in self._latest:
            return self._MISS
        latest = self._latest[(kind, f.asset_key)].get(f.asset_partitions[0])
        after, before = f.after_storage_id or None, f.before_storage_id or None  # Dagster reads 0 as no bound
        if after is not None and before is not None:
            return self._MISS
        if latest is None:
            return []
        if after is not None:
            return [latest] if latest.storage_id > after else []
        if before is not None:
            return [latest] if latest.storage_id < before else self._MISS  # an older record: only the storage knows
        return [latest]

    def _fetch(self, kind: str, records_filter, limit: int, cursor=None, ascending: bool = False):
        from dagster._core.event_api import EventRecordsResult
        from dagster._core.storage.event_log.base import EventLogCursor

        found = self._answer(kind, records_filter, limit, cursor, ascending)
        if found is self._MISS:
            fetch = self._instance.fetch_materializations if kind == "materialization" else self._instance.fetch_observations
            return fetch(records_filter, limit, cursor, ascending)
        after = EventLogCursor.from_storage_id(found[-1].storage_id).to_string() if found else ""
        return EventRecordsResult(records=found, cursor=after, has_more=bool(found))

    def fetch_materializations(self, records_filter, limit: int, cursor=None, ascending: bool = False):
        return self._fetch("materialization", records_filter, limit, cursor, ascending)

    def fetch_observations(self, records_filter, limit: int, cursor=None, ascending: bool = False):
        return self._fetch("observation", records_filter, limit, cursor, ascending)

    def get_latest_data_version_record(self, key, is_source=None, partition_key=None, before_cursor=None, after_cursor=None):
        """What ``DagsterInstance.get_latest_data_version_record`` answers, through the snapshot."""
        records_filter = dg.AssetRecordsFilter(
            asset_key=key,
            asset_partitions=[partition_key] if partition_key else None,
            before_storage_id=before_cursor,
            after_storage_id=after_cursor,
        )
        if is_source is not True:
            found = next(iter(self.fetch_materializations(records_filter, limit=1).records), None)
            if found is not None or is_source is False:
                return found
        return next(iter(self.fetch_observations(records_filter, limit=1).records), None)


def stale_or_missing(instance: dg.DagsterInstance, defs: dg.Definitions, keys: list[Key], prefetch: bool = True) -> dict[Key, str]:
    """Dagster's own status of each asset partition ('MISSING', 'STALE' or 'FRESH'): the
    resolver behind the UI's Unsynced / Missing marks (Dagster has no public entry point to
    it; this is the one place we reach into ``dagster._core``). With ``prefetch`` the resolver
    reads the latest records of every partition from :class:`LatestRecords` (a few queries
    per asset) instead of one query per asset partition; it decides the same."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._time import get_current_datetime
    from dagster._utils.caching_instance_queryer import CachingInstanceQueryer

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None), instance=instance, asset_graph=graph
    )
    if prefetch:
        asked = {k for k, _ in keys}
        source = LatestRecords(instance, graph, asked | {p for k in asked for p in graph.get(k).parent_keys})
        queryer = CachingInstanceQueryer(source, graph, view)
        resolver = CachingStaleStatusResolver(instance=source, asset_graph=graph, loading_context=view, instance_queryer=queryer)
    else:
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


class Lineage:
    """Dagster's asset lineage at the partition level over the asset partitions a call may
    run (``within``): the children of an asset partition are what Dagster's partition mappings
    make of it (same category for category -> category, every category below an unpartitioned
    asset, the one partition of an unpartitioned asset below a partitioned one)."""

    def __init__(self, instance: dg.DagsterInstance, defs: dg.Definitions, within: set[Key]):
        from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
        from dagster._time import get_current_datetime

        self.graph = defs.resolve_asset_graph()
        self.view = AssetGraphView(
            temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
            instance=instance,
            asset_graph=self.graph,
        )
        self.within = within
        self.order = {k: i for i, k in enumerate(self.graph.toposorted_asset_keys)}
        self._children: dict[Key, set[Key]] = {}

    def children(self, key: Key) -> set[Key]:
        if key not in self._children:
            from dagster._core.definitions.events import AssetKeyPartitionKey

            asset, part = key
            subset = self.view.get_asset_subset_from_asset_partitions(asset, {AssetKeyPartitionKey(asset, part)})
            out: set[Key] = set()
            for child in self.graph.get(asset).child_keys:
                mapped = self.view.compute_child_subset(child, subset)
                out.update((ap.asset_key, ap.partition_key) for ap in mapped.expensively_compute_asset_partitions())
            self._children[key] = out & self.within
        return self._children[key]

    def downstream(self, keys: set[Key]) -> set[Key]:
        """``keys`` and every asset partition below them (within the call's)."""
        seen = set(keys)
        stack = list(keys)
        while stack:
            for child in self.children(stack.pop()) - seen:
                seen.add(child)
                stack.append(child)
        return seen

    def sort(self, keys) -> list[Key]:
        return sorted(keys, key=lambda k: (self.order[k[0]], k[1] or ""))


def _waves(lineage: Lineage, todo: set[Key], siblings: dict[dg.AssetKey, set[dg.AssetKey]]):
    """The runs of each wave over ``todo``, by partition: a run holds the asset partitions to
    do of one partition (or the unpartitioned ones) whose parents to do are done or in the
    same run, so a category's whole chain below a change is one run. Yields one wave at a time
    and takes back (``send``) the asset partitions that did not materialize: what is below
    them is dropped (reported blocked by the caller)."""
    parents: dict[Key, set[Key]] = {k: set() for k in todo}
    for key in todo:
        for child in lineage.children(key) & todo:
            parents[child].add(key)
    left = set(todo)
    while left:
        chosen: set[Key] = set()
        for key in lineage.sort(left):  # parents first
            waiting = parents[key] & left
            if all(p in chosen and p[1] == key[1] for p in waiting):
                chosen.add(key)
        runs: dict[str | None, set[dg.AssetKey]] = {}
        for asset, part in chosen:
            runs.setdefault(part, set()).update(siblings.get(asset, {asset}))
        left -= chosen
        failed = yield runs
        if failed:
            left -= lineage.downstream(set(failed))


def _failed_checks(instance: dg.DagsterInstance, defs: dg.Definitions, assets: set[dg.AssetKey]) -> set[dg.AssetCheckKey]:
    """The checks defined outside an asset (the lints) whose latest evaluation failed with
    ERROR severity (they block what is below them) or never finished: they run again. A
    check inside an asset's step fails the step, so the asset itself is stale and reruns."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    separate = {k for c in defs.asset_checks or [] for k in c.check_keys if k.asset_key in assets}
    if not separate:
        return set()
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(separate))
    out = set()
    for key, record in latest.items():
        evaluation = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
        if record.status == AssetCheckExecutionRecordStatus.PLANNED:
            run = instance.get_run_by_id(record.run_id)
            if run is not None and run.is_finished:
                out.add(key)  # the check's step died or was skipped
        elif (
            record.status == AssetCheckExecutionRecordStatus.FAILED and getattr(evaluation, "severity", None) == dg.AssetCheckSeverity.ERROR
        ):
            out.add(key)
    return out


# --------------------------------------------------------------------------- running


def _reconstructable(settings_json: str, executor: str | None = None):
    kwargs = {"settings_json": settings_json}
    if executor:
        kwargs["executor"] = executor
    return dg.build_reconstructable_job("magnet_assets.definitions", "magnet_job", reconstructable_kwargs=kwargs)


@functools.cache
def _worker_instance(dagster_home: str) -> dg.DagsterInstance:
    sqlite_sync.register(dagster_home, os.environ.get(sqlite_sync.ENV, "off"))
    return dg.DagsterInstance.from_config(dagster_home)


#: the environment a worker takes from the process that submits its runs
_ENV_PREFIXES = ("MAGNET_", "DAGSTER_", "HF_", "LITELLM_", "TOKENIZERS_", "OPENAI_", "ANTHROPIC_")


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}


def _adopt(environment: dict[str, str]) -> None:
    """The submitting process's variables in this worker. The forkserver the workers fork from
    is started once per process, with the environment of that moment; a later ``run_pipeline``
    in the same process (a notebook, the tests) may run under other variables."""
    for key in [k for k in os.environ if k.startswith(_ENV_PREFIXES) and k not in environment]:
        del os.environ[key]
    os.environ.update(environment)


def _execute_in_worker(
    settings_json: str, dagster_home: str, assets: set[dg.AssetKey], part: str | None, log_level: str, checks=None, environment=None
):
    """One partition's run in a worker process (the run's steps in that process; the instance
    and the job built once per worker)."""
    if environment is not None:
        _adopt(environment)
    return _execute(_reconstructable(settings_json, "in_process"), _worker_instance(dagster_home), assets, part, log_level, checks)


def _warm_worker(settings_json: str, dagster_home: str, environment: dict[str, str] | None = None) -> None:
    """Build what a worker's runs share (the job, the instance) before the first run comes:
    a worker then starts its first category at once."""
    if environment is not None:
        _adopt(environment)
    magnet_job(settings_json=settings_json, executor="in_process")  # the keywords the reconstructable job calls it with
    _worker_instance(dagster_home)


class _Workers:
    """The worker pool, started in a thread: forking the first workers waits for the forkserver
    to import the project (seconds), time this process spends planning instead. ``get`` waits
    for it; each worker builds the job before its first run."""

    def __init__(self, workers: int, settings_json: str, dagster_home: str):
        self._pool: ProcessPoolExecutor | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, args=(workers, settings_json, dagster_home), name="magnet-workers", daemon=True)
        self._thread.start()

    def _start(self, workers: int, settings_json: str, dagster_home: str) -> None:
        try:
            pool = _worker_pool(workers)
            for _ in range(workers):
                pool.submit(_warm_worker, settings_json, dagster_home, _environment())
            self._pool = pool
        except BaseException as exc:  # raised where the pool is wanted
            self._error = exc

    def get(self) -> ProcessPoolExecutor:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._pool is not None
        return self._pool

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a server that has the project imported (fast to start;
    :mod:`magnet_assets.forkserver`). Dagster's run execution is not thread-safe (its log set-up
    reconfigures ``logging``), so category runs go side by side in processes, not threads."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=forkserver.context())


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


def _execute(recon, instance, assets: set[dg.AssetKey], part: str | None, log_level: str, checks=None) -> tuple[str, list[Step]]:
    """One Dagster run of ``assets`` (one partition, or the unpartitioned ones). ``checks``:
    the asset checks of the run when they are more than the assets' own (a lint that failed
    before runs again before what it blocks)."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    if part is not None:
        tags["dagster/partition"] = part
    steps: list[Step] = []
    selection = sorted(assets, key=str)
    if checks:
        recon, selection = recon.get_subset(asset_selection=set(assets), asset_check_selection=set(checks)), None
    try:
        run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
        with dg.execute_job(recon, instance=instance, tags=tags, asset_selection=selection, run_config=run_config) as result:
            events = result.all_events
            run_id = result.run_id
    except Exception as exc:  # a definition error still ends in a summary, not a traceback
        return "", [Step(a.to_user_string(), part, "failed", error=f"{type(exc).__name__}: {exc}") for a in sorted(assets, key=str)]
    times = _step_times(instance, run_id)
    failures = {e.step_key: _error_of(e) for e in events if e.event_type_value == "STEP_FAILURE"}
    done: dict[dg.AssetKey, tuple[str, dict]] = {}
    failed_checks: list[str] = []
    for e in events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            m = e.event_specific_data.materialization
            done[m.asset_key] = (e.step_key, _llm_counts(m.metadata))
        elif e.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = e.event_specific_data
            name = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
            blocking = not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
            if blocking:
                failed_checks.append(name)
            # a failed blocking check fails the call (exit 1); a check run again on its own is reported either way
            if blocking or (checks and ev.asset_check_key in checks and ev.asset_key not in assets):
                error = None if ev.passed else f"check {name} failed ({ev.severity.value})"
                steps.append(Step(name, part, "failed" if blocking else "checked", times.get(e.step_key, 0.0), error, run_id=run_id))
    first_error = (
        next(iter(failures.values()), None)
        or (f"blocking check(s) failed: {', '.join(failed_checks)}" if failed_checks else None)
        or (_run_failure(instance, run_id) if set(assets) - set(done) else None)  # read the log only when something did not run
    )
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

    Dagster's stale / missing status picks the roots; Dagster's lineage adds what is below
    them. A root that is stale (new code version, new upstream data) runs first on its own:
    when its rebuild produces the same data (same data version) Dagster calls nothing below it
    stale, and nothing more runs. Then the stale or missing asset partitions and everything
    below them run in as few runs as Dagster allows (one per partition a wave: a category's
    whole chain in one run, the categories side by side, then the unpartitioned tail).

    ``assets`` limits the run to these assets and their upstream; ``categories`` to these
    partitions. Every field of ``settings`` reaches the assets (resource configuration)."""
    started = time.perf_counter()
    instance = open_instance(settings)
    mark_dead_runs(instance)
    sources = discover_categories(settings)
    versions = {cat: sources[cat].version() for cat in sorted(sources)}
    changed = observe_sources(instance, versions)
    settings_json = json.dumps(resource_values(settings), default=str)
    limit = settings.run.max_concurrent or cores()
    fan_out = settings.run.executor == "multiprocess" and limit > 1
    home = str(settings.dagster_home.resolve())
    pool = None
    if fan_out and len([c for c in changed if not categories or c in categories]) > 1:
        # new or changed sources in several categories (a fresh home): category runs to come;
        # the workers start (and build the job) while this process plans
        pool = _Workers(limit, settings_json, home)
    try:
        defs = build_definitions(settings=settings)
        graph = defs.resolve_asset_graph()
        all_keys = {k for k in graph.get_all_asset_keys() if k != SOURCE_KEY and graph.get(k).is_materializable}
        wanted = set(all_keys)
        if assets:
            targets = {dg.AssetKey(a) for a in assets}
            unknown = targets - all_keys
            if unknown:
                raise KeyError(f"unknown asset(s): {', '.join(sorted(k.to_user_string() for k in unknown))}")
            wanted = dg.AssetSelection.assets(*targets).upstream().resolve(graph) & all_keys
            wanted |= {s for k in wanted for s in graph.get(k).execution_set_asset_keys}  # a multi-asset runs whole
        run_categories = [c for c in versions if not categories or c in categories]
        order = [k for k in graph.toposorted_asset_keys if k in wanted]
        targets_ = [(k, c) for k in order for c in (run_categories if graph.get(k).partitions_def is not None else [None])]
        lineage = Lineage(instance, defs, set(targets_))
        siblings = {k: set(graph.get(k).execution_set_asset_keys) & wanted for k in order}
        # the jobs are built when a run is made here (a no-op call makes none)
        recon = functools.cache(lambda: _reconstructable(settings_json))
        in_process = functools.cache(lambda: _reconstructable(settings_json, "in_process"))

        def recon_for(keys: set[dg.AssetKey], part: str | None):
            """A category's run is a chain (each step needs the one before): its steps run in one
            process, the categories side by side. An unpartitioned run of more than two steps
            (training, evaluation: independent steps, each with its own heavy libraries) on the
            configured executor."""
            steps = {frozenset(siblings.get(k, {k})) for k in keys}
            return in_process() if settings.run.executor == "multiprocess" and (part is not None or len(steps) <= 2) else recon()

        # category runs side by side in worker processes, each run's steps in its worker; the
        # unpartitioned runs (one at a time) in this process. With the in_process executor (tests)
        # or dask (steps on the cluster) every run is made here.
        summary = RunSummary()
        settled: set[Key] = set()  # built, failed or blocked in this call

        def report(step: Step) -> None:
            summary.steps.append(step)
            if on_step:
                on_step(step)

        def run_wave(runs: dict[str | None, set[dg.AssetKey]], checks: dict[str | None, set] | None = None) -> set[Key]:
            """The wave's runs; returns the asset partitions that did not materialize."""
            nonlocal pool
            checks = checks or {}
            failed: set[Key] = set()

            def take(run_id: str, steps: list[Step]) -> None:
                if run_id:
                    summary.run_ids.append(run_id)
                for step in steps:
                    key = (dg.AssetKey(step.asset), step.partition) if ":" not in step.asset else None
                    if key is not None:
                        settled.add(key)
                        if step.status != "materialized":
                            failed.add(key)
                    report(step)

            def with_checks(part, keys):
                extra = checks.get(part)
                return (graph.get_check_keys_for_assets(keys) | extra) if extra else None

            partitioned = sorted(((part, keys) for part, keys in runs.items() if part is not None), key=lambda pk: pk[0])
            if fan_out and len(partitioned) > 1:
                pool = pool or _Workers(limit, settings_json, home)
                last = _last_run_seconds(instance, [part for part, _ in partitioned])
                partitioned.sort(key=lambda pk: -last.get(pk[0], 0.0))  # longest first (then by name): the last to end ends soonest
                futures = [
                    pool.get().submit(
                        _execute_in_worker, settings_json, home, keys, part, log_level, with_checks(part, keys), _environment()
                    )
                    for part, keys in partitioned
                ]
                for future in as_completed(futures):  # each run reported when it ends (live progress)
                    take(*future.result())
            else:
                for part, keys in partitioned:
                    take(*_execute(recon_for(keys, part), instance, keys, part, log_level, with_checks(part, keys)))
            if None in runs:
                keys = runs[None]
                take(*_execute(recon_for(keys, None), instance, keys, None, log_level, with_checks(None, keys)))
            return failed

        def block(keys: set[Key], why: str) -> None:
            for key in lineage.sort(keys - settled):
                settled.add(key)
                report(Step(key[0].to_user_string(), key[1], "blocked", error=why))

        status = {k: "MISSING" for k in targets_} if force else _todo(instance, defs, targets_)
        if pool is None and fan_out and len({p for _, p in status if p is not None}) > 1:
            pool = _Workers(limit, settings_json, home)  # category runs to come (e.g. after a code change)
        retry = {} if force else _retry_checks(instance, defs, graph, wanted, run_categories)
        retry = {part: kept for part, keys in retry.items() if (kept := {c for c in keys if (c.asset_key, part) not in status})}
        if status or retry:
            probe_endpoint(settings.llm)
        # 1. the stale roots on their own (and the failed lints): their new data decides what is below
        roots = {k for k, s in status.items() if s == "STALE" and not any(p in status for p in _parents(lineage, k, status))}
        if roots or retry:
            probe: dict[str | None, set[dg.AssetKey]] = {}
            for asset, part in roots:
                probe.setdefault(part, set()).update(siblings[asset])
            for part, check_keys in retry.items():
                probe.setdefault(part, set())
            failed = run_wave(probe, retry)
            for part, check_keys in retry.items():  # a lint that fails again blocks what is below its asset
                still = [
                    c
                    for c in check_keys
                    if any(s.asset == f"{c.asset_key.to_user_string()}:{c.name}" and s.status == "failed" for s in summary.steps)
                ]
                below = {child for c in still for child in lineage.children((c.asset_key, part))}
                block(lineage.downstream(below), f"blocking check(s) failed: {', '.join(c.name for c in still)}")
            block(lineage.downstream(failed) - failed, "an upstream asset failed")
            status = _todo(instance, defs, [k for k in targets_ if k not in settled])
        # 2. what Dagster calls stale or missing now, and everything below it, in waves
        todo = lineage.downstream(set(status)) - settled
        plan = _waves(lineage, todo, siblings)
        runs = next(plan, None)
        while runs is not None:
            failed = run_wave(runs)
            block(lineage.downstream(failed) - failed, "an upstream asset failed")
            try:
                runs = plan.send(failed)
            except StopIteration:
                runs = None
        if pool is not None:
            pool.shutdown()
        for key in targets_:
            if key not in settled:
                report(Step(key[0].to_user_string(), key[1], "skipped"))
        summary.seconds = time.perf_counter() - started
        return summary
    except BaseException:  # an unknown asset, an unreachable endpoint, Ctrl-C: no worker left warming up
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise


def _last_run_seconds(instance: dg.DagsterInstance, parts: list[str]) -> dict[str, float]:
    """How long each partition's latest finished run took (none on a fresh home): the runs
    of a wave go to the workers longest first, so that no worker is left alone at the end
    with a long category started last."""
    out: dict[str, float] = {}
    for part in parts:
        for record in instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": part}), limit=5):
            if record.start_time and record.end_time:
                out[part] = record.end_time - record.start_time
                break
    return out


def _todo(instance, defs, keys: list[Key]) -> dict[Key, str]:
    return {k: s for k, s in stale_or_missing(instance, defs, keys).items() if s != "FRESH"}


def _parents(lineage: Lineage, key: Key, among) -> list[Key]:
    return [p for p in among if key in lineage.children(p)]


def _retry_checks(instance, defs, graph, wanted: set[dg.AssetKey], categories: list[str]) -> dict[str | None, set[dg.AssetCheckKey]]:
    """The failed lints (see :func:`_failed_checks`) by partition of the run that redoes them."""
    out: dict[str | None, set[dg.AssetCheckKey]] = {}
    for key in _failed_checks(instance, defs, wanted):
        partitioned = graph.get(key.asset_key).partitions_def is not None
        for part in categories if partitioned else [None]:
            out.setdefault(part, set()).add(key)
    return out
