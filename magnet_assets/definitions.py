"""The Dagster definitions of Magnet: every stage module's assets, checks and sensors.

Loaded by ``workspace.yaml`` (``dagster dev``) and by the ``magnet`` CLI. The settings in
force (file + environment, or the ones ``run_pipeline`` was given) set the assets' code
versions, the resource's configuration, the executor and the automation conditions.
"""

from __future__ import annotations

import functools
import importlib
import json

import dagster as dg

from magnet_assets import sqlite_sync  # noqa: F401  (every process that runs steps: the instance's SQLite sync level)
from magnet_assets.forkserver import cores
from magnet_assets.io_manager import PolarsParquetIOManager
from magnet_assets.resources import MagnetResource
from magnet_assets.versions import with_code_versions
from magnet_lib.settings import MagnetSettings, load_settings

# Stage modules in pipeline order; each holds the assets named after what they produce.
STAGE_MODULES = ["sources", "pool", "graph", "translation", "training", "evaluation", "bfcl"]
#: the asset job ``magnet run`` executes (one run per category partition, plus the tail)
JOB_NAME = "magnet_assets_job"


def executor_for(settings: MagnetSettings) -> dg.ExecutorDefinition:
    """The executor setting as a Dagster executor, bounded by the machine's cores."""
    run = settings.run
    limit = run.max_concurrent or cores()
    if run.executor == "in_process":
        return dg.in_process_executor
    if run.executor == "dask":
        from magnet_assets.dask_engine import partition_safe_dask_executor  # extra [dask]

        cluster = (
            {"existing": {"address": run.dask_address}} if run.dask_address else {"local": {"n_workers": limit, "threads_per_worker": 1}}
        )
        return partition_safe_dask_executor.configured({"cluster": cluster})
    # forkserver with the project preloaded: a step process forks in milliseconds instead of
    # importing Dagster, Polars and the library again (seconds)
    return dg.multiprocess_executor.configured(
        {"max_concurrent": limit, "start_method": {"forkserver": {"preload_modules": ["magnet_assets.definitions"]}}}
    )


def build_definitions(home: str | None = None, tools_dir: str | None = None, settings: MagnetSettings | None = None) -> dg.Definitions:
    """Definitions over one Magnet home (tests pass a temporary one, ``run_pipeline`` its settings)."""
    if settings is None:
        overrides = {k: v for k, v in (("home", home), ("tools_dir", tools_dir)) if v}
        settings = load_settings(**overrides)
    modules = [importlib.import_module(f"magnet_assets.{name}") for name in STAGE_MODULES]
    assets = dg.load_assets_from_modules(modules)
    if settings.run.executor == "dask":  # see graph.dependency_graph_asset
        from magnet_assets.graph import dependency_graph_asset

        assets = [dependency_graph_asset(pool=None) if dg.AssetKey("dependency_graph") in getattr(a, "keys", ()) else a for a in assets]
    assets = with_code_versions(assets, settings)
    if settings.run.automation:
        condition = dg.AutomationCondition.eager() | dg.AutomationCondition.code_version_changed()
        assets = [
            out
            for a in assets
            for out in (
                dg.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=condition), [a])
                if isinstance(a, dg.AssetsDefinition) and a.is_materializable
                else [a]
            )
        ]
    sensors = [obj for m in modules for obj in vars(m).values() if isinstance(obj, dg.SensorDefinition)]
    if settings.run.automation:
        sensors.append(
            dg.AutomationConditionSensorDefinition(
                "magnet_automation",
                target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=30,
            )
        )
    job = dg.define_asset_job(JOB_NAME, selection=dg.AssetSelection.all() - dg.AssetSelection.keys("tool_sources"))
    return dg.Definitions(
        assets=assets,
        asset_checks=dg.load_asset_checks_from_modules(modules),
        sensors=sensors,
        jobs=[job],
        executor=executor_for(settings),
        resources={
            "magnet": MagnetResource.from_settings(settings),
            "io_manager": PolarsParquetIOManager(base_dir=str(settings.storage_dir.resolve())),
        },
    )


def settings_from_json(settings_json: str) -> MagnetSettings:
    return load_settings(**json.loads(settings_json))


@functools.cache
def magnet_job(settings_json: str, executor: str | None = None) -> dg.JobDefinition:
    """The asset job over given settings (JSON of ``resource_values``): what each step
    subprocess of the multiprocess executor rebuilds (see ``dg.build_reconstructable_job``);
    built once per process, so a worker that runs many category runs builds it once."""
    settings = settings_from_json(settings_json)
    if executor:  # a worker process that runs one category's run in itself
        settings = settings.model_copy(update={"run": settings.run.model_copy(update={"executor": executor})})
    return build_definitions(settings=settings).resolve_job_def(JOB_NAME)


@dg.definitions
def defs() -> dg.Definitions:
    """What ``dagster dev`` (``magnet ui``) loads: the definitions over the settings in force.
    Dagster builds them when the code location loads, not when this module is imported, so
    ``magnet run`` and every step process (which import this module) do not build them twice."""
    return build_definitions()
