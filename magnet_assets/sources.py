"""The tool sources: an observable source asset per category, and the sensor that adds
a partition when a category appears (a new built-in environment or a new folder in
``MAGNET_TOOLS_DIR``)."""


import dagster as dg

from magnet_assets.partitions import category_partitions
from magnet_assets.resources import MagnetResource
from magnet_lib.pool import discover_categories


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


@dg.sensor(minimum_interval_seconds=30, description="Adds a category partition when a category appears.")
def category_sensor(context: dg.SensorEvaluationContext, magnet: MagnetResource) -> dg.SensorResult | dg.SkipReason:
    found = set(discover_categories(magnet.settings))
    known = set(context.instance.get_dynamic_partitions(category_partitions.name))
    new = sorted(found - known)
    if not new:
        return dg.SkipReason(f"no new category ({len(known)} known)")
    return dg.SensorResult(dynamic_partitions_requests=[category_partitions.build_add_request(new)])
