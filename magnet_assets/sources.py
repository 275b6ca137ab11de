"""The tool sources: an observable source asset per category, and the sensor that adds
a partition when a category appears (a new built-in environment or a new folder in
``MAGNET_TOOLS_DIR``)."""

import json

import dagster as dg

from magnet_assets.partitions import category_partitions
from magnet_assets.resources import MagnetResource
from magnet_lib.pool.function_pool import discover_categories

DATA_VERSION_TAG = "dagster/data_version"  # where Dagster keeps an observation's data version


@dg.observable_source_asset(
    partitions_def=category_partitions,
    group_name="pool",
    description="Tool specs of each category; data version = hash of the category's specs and environment code.",
)
def tool_sources(context, magnet: MagnetResource) -> dg.DataVersionsByPartition:
    sources = discover_categories(magnet.settings)
    known = set(context.instance.get_dynamic_partitions(category_partitions.name))
    versions = {cat: src.version() for cat, src in sources.items() if cat in known}
    return dg.DataVersionsByPartition(versions)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a category partition when a category appears, and records a new data version of "
    "tool_sources for every category whose specs changed (the UI then marks its partitions as changed).",
)
def category_sensor(context: dg.SensorEvaluationContext, magnet: MagnetResource) -> dg.SensorResult | dg.SkipReason:
    versions = {cat: src.version() for cat, src in discover_categories(magnet.settings).items()}
    known = set(context.instance.get_dynamic_partitions(category_partitions.name))
    seen = json.loads(context.cursor) if context.cursor else {}
    new = sorted(set(versions) - known)
    changed = sorted(cat for cat, version in versions.items() if seen.get(cat) != version)
    if not new and not changed:
        return dg.SkipReason(f"no new or changed category ({len(known)} known)")
    return dg.SensorResult(
        dynamic_partitions_requests=[category_partitions.build_add_request(new)] if new else [],
        asset_events=[
            dg.AssetObservation(asset_key="tool_sources", partition=cat, tags={DATA_VERSION_TAG: versions[cat]}) for cat in changed
        ],
        cursor=json.dumps(versions, sort_keys=True),
    )
