"""Headless materialization of the asset graph on the persistent Dagster instance.

``run_pipeline`` is what ``magnet run`` calls. It materializes what is missing or stale,
per category partition, in pipeline order, as ordinary Dagster runs on the instance under
``$MAGNET_HOME/dagster`` (so they show in ``magnet ui``).

Staleness is decided by a *signature* per (asset, partition), recorded as a run tag
``magnet/sig/<asset>`` of the run that materialized it:

- a partitioned asset's signature hashes the project code, the settings, the category's
  source version (``tool_sources`` data version) and its upstream signatures: the same
  partition of partitioned upstreams, and unpartitioned upstreams unless they are
  *category-sliced* (tag ``magnet/category_sliced``, e.g. the Kuzu graph: a partition only
  reads its own category from it, so another category's change must not invalidate it);
- an unpartitioned asset's signature hashes code, settings and all upstream signatures.

So changing one tool of one category re-runs exactly that category's partitions and the
unpartitioned assets after them; a run interrupted half-way resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.instance.ref import InstanceRef

from magnet_lib.pool.function_pool import discover_categories
from magnet_lib.settings import MagnetSettings

SIG_TAG = "magnet/sig/"
SLICED_TAG = "magnet/category_sliced"
SOURCE_KEY = dg.AssetKey("tool_sources")
_PACKAGES = ("magnet_lib", "graph_db", "magnet_assets")


@dataclass
class Step:
    asset: str
    partition: str | None
    status: str  # materialized | skipped | failed | blocked
    seconds: float = 0.0
    error: str | None = None


@dataclass
class RunSummary:
    steps: list[Step] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status in ("failed", "blocked")]

    def materialized(self, asset: str | None = None) -> list[Step]:
        return [s for s in self.steps if s.status == "materialized" and (asset is None or s.asset == asset)]


def open_instance(settings: MagnetSettings) -> dg.DagsterInstance:
    """The persistent instance under ``$MAGNET_HOME/dagster`` (created on first use)."""
    home = settings.dagster_home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # runs launched from the UI (a backfill over every partition) queue instead of all
        # starting at once: one per core keeps a laptop responsive; edit the file to change it
        config.write_text(f"telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: {max(2, os.cpu_count() or 2)}\n")
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def code_version() -> str:
    """Hash of the project's code and prompt templates (built-in environments excluded:
    their code is part of each category's source version)."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix not in (".py", ".md", ".txt", ".jinja") or "envs" in path.relative_to(root).parts:
                continue
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def settings_version(settings: MagnetSettings) -> str:
    data = settings.public_dict()
    for key in ("home", "tools_dir"):
        data.pop(key, None)
    return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()[:16]


def _hash(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class _Plan:
    """The asset graph seen as phases: runs of partitioned assets, then unpartitioned ones."""

    def __init__(self, defs: dg.Definitions):
        self.graph = defs.resolve_asset_graph()
        self.job = defs.resolve_implicit_global_asset_job_def()
        keys = [k for k in self.graph.toposorted_asset_keys if k != SOURCE_KEY and self.graph.get(k).is_materializable]
        self.order = keys
        self.partitioned = {k: self.graph.get(k).partitions_def is not None for k in keys}
        self.sliced = {k for k in keys if self.graph.get(k).tags.get(SLICED_TAG) == "true"}
        # keys materialized together (a multi-asset that cannot be subset)
        self.siblings: dict[dg.AssetKey, set[dg.AssetKey]] = {}
        for k in keys:
            node = self.graph.get(k)
            self.siblings[k] = set(node.execution_set_asset_keys) if hasattr(node, "execution_set_asset_keys") else {k}
        self.phases: list[tuple[bool, list[dg.AssetKey]]] = []
        for k in keys:
            if self.phases and self.phases[-1][0] == self.partitioned[k]:
                self.phases[-1][1].append(k)
            else:
                self.phases.append((self.partitioned[k], [k]))

    def parents(self, key: dg.AssetKey) -> list[dg.AssetKey]:
        return sorted(self.graph.get(key).parent_keys, key=lambda k: k.to_user_string())


def _signatures(plan: _Plan, categories: dict[str, str], base: str) -> dict[tuple[dg.AssetKey, str | None], str]:
    sigs: dict[tuple[dg.AssetKey, str | None], str] = {}
    for key in plan.order:
        parents = plan.parents(key)
        if plan.partitioned[key]:
            for cat, version in categories.items():
                ups = []
                for p in parents:
                    if p == SOURCE_KEY:
                        ups.append(f"source={version}")
                    elif plan.partitioned.get(p):
                        ups.append(sigs[(p, cat)])
                    elif p not in plan.sliced:
                        ups.append(sigs[(p, None)])
                sigs[(key, cat)] = _hash(base, key.to_user_string(), cat, version, *ups)
        else:
            ups = []
            for p in parents:
                if plan.partitioned.get(p):
                    ups.extend(sigs[(p, cat)] for cat in categories)
                elif p != SOURCE_KEY:
                    ups.append(sigs[(p, None)])
            sigs[(key, None)] = _hash(base, key.to_user_string(), *ups)
    return sigs


def _recorded_signature(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> str | None:
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(records_filter, limit=1).records
    if not records:
        return None
    run = instance.get_run_by_id(records[0].event_log_entry.run_id)
    return run.tags.get(SIG_TAG + key.to_user_string()) if run else None


def observe_sources(instance: dg.DagsterInstance, versions: dict[str, str]) -> None:
    """Record each category's source version as an observation of ``tool_sources``."""
    existing = set(instance.get_dynamic_partitions("category"))
    new = sorted(set(versions) - existing)
    if new:
        instance.add_dynamic_partitions("category", new)
    for cat, version in versions.items():
        instance.report_runless_asset_event(dg.AssetObservation(asset_key=SOURCE_KEY, partition=cat, tags={DATA_VERSION_TAG: version}))


def run_pipeline(
    settings: MagnetSettings,
    *,
    force: bool = False,
    assets: list[str] | None = None,
    categories: list[str] | None = None,
    on_step: Callable[[Step], None] | None = None,
    log_level: str = "WARNING",
) -> RunSummary:
    """Materialize missing or stale asset partitions (everything with ``force``).

    ``assets`` limits the run to these assets and their upstream; ``categories`` to these
    partitions (unpartitioned assets still see every category).
    """
    from magnet_assets.definitions import build_definitions

    instance = open_instance(settings)
    defs = build_definitions(home=str(settings.home), tools_dir=str(settings.tools_dir) if settings.tools_dir else None)
    plan = _Plan(defs)
    sources = discover_categories(settings)
    versions = {cat: sources[cat].version() for cat in sorted(sources)}
    observe_sources(instance, versions)
    sigs = _signatures(plan, versions, _hash(code_version(), settings_version(settings)))

    wanted: set[dg.AssetKey] = set(plan.order)
    if assets:
        targets = {dg.AssetKey(a) for a in assets}
        unknown = targets - set(plan.order)
        if unknown:
            raise KeyError(f"unknown asset(s): {', '.join(sorted(k.to_user_string() for k in unknown))}")
        wanted = set(targets)
        for t in targets:
            wanted |= _ancestors(plan, t)
    run_categories = [c for c in versions if not categories or c in categories]

    summary = RunSummary()
    failed_parts: set[tuple[dg.AssetKey, str | None]] = set()

    def is_stale(key: dg.AssetKey, part: str | None) -> bool:
        return force or _recorded_signature(instance, key, part) != sigs[(key, part)]

    def execute(keys: list[dg.AssetKey], part: str | None) -> None:
        selection = set()
        for k in keys:
            selection |= plan.siblings[k]
        tags = {SIG_TAG + k.to_user_string(): sigs[(k, part)] for k in selection}
        start = time.perf_counter()
        error = None
        try:
            result = plan.job.execute_in_process(
                instance=instance,
                partition_key=part,
                asset_selection=sorted(selection, key=str),
                tags=tags,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            )
            summary.run_ids.append(result.run_id)
            done = {e.asset_key for e in result.get_asset_materialization_events()} if result.success else set()
            if not result.success:
                error = _failure_message(result)
                done = {e.asset_key for e in result.get_asset_materialization_events()}
        except Exception as exc:  # a definition error must still end in a summary, not a traceback
            done, error = set(), f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        for k in sorted(selection, key=plan.order.index):
            ok = k in done
            if not ok:
                failed_parts.add((k, part))
            step = Step(k.to_user_string(), part, "materialized" if ok else "failed", seconds, None if ok else error)
            summary.steps.append(step)
            if on_step:
                on_step(step)

    def blocked(key: dg.AssetKey, part: str | None) -> bool:
        for p in plan.parents(key):
            if p == SOURCE_KEY:
                continue
            if plan.partitioned.get(p):
                parts = [part] if part is not None else run_categories
                if any((p, c) in failed_parts for c in parts):
                    return True
            elif (p, None) in failed_parts:
                return True
        return False

    for partitioned, keys in plan.phases:
        keys = [k for k in keys if k in wanted]
        if not keys:
            continue
        for part in run_categories if partitioned else [None]:
            todo, skipped = [], []
            for k in keys:
                if blocked(k, part) or any((s, part) in failed_parts for s in plan.siblings[k] if s in todo):
                    failed_parts.add((k, part))
                    step = Step(k.to_user_string(), part, "blocked", error="an upstream asset failed")
                    summary.steps.append(step)
                    if on_step:
                        on_step(step)
                elif is_stale(k, part) or any(p in todo for p in plan.parents(k)):
                    todo.append(k)
                else:
                    skipped.append(k)
            for k in skipped:
                step = Step(k.to_user_string(), part, "skipped")
                summary.steps.append(step)
                if on_step:
                    on_step(step)
            if todo:
                execute(todo, part)
    return summary


def _failure_message(result) -> str:
    """The first step failure's own error (e.g. 'OSError: disk went away'), not Dagster's wrapper."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and "dagster" in (error.cls_name or "").lower():
                error = error.cause
            if error is not None:
                return f"{event.step_key}: {(error.message or '').strip()}"
    failures = [e for e in result.all_events if e.is_failure]
    return failures[0].message if failures else "run failed"


def _ancestors(plan: _Plan, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen: set[dg.AssetKey] = set()
    stack = [key]
    while stack:
        k = stack.pop()
        for p in plan.parents(k):
            if p != SOURCE_KEY and p not in seen:
                seen.add(p)
                stack.append(p)
    return seen
