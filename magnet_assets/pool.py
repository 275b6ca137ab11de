"""``function_pool``: the validated tools of one category (rejects go to their own table)."""

from collections import Counter

import dagster as dg

from magnet_assets.metadata import counts_metadata, table_metadata
from magnet_assets.partitions import category_partitions
from magnet_assets.resources import MagnetResource
from magnet_assets.versions import versioned
from magnet_lib.models import Tool, ToolReject
from magnet_lib.pool.function_pool import load_category
from magnet_lib.tables import to_frame


@dg.multi_asset(
    partitions_def=category_partitions,
    group_name="pool",
    deps=["tool_sources"],
    outs={
        "function_pool": dg.AssetOut(
            description="Validated tools: name, category, tool_class, description, parameters, response, source, executable."
        ),
        "tool_rejects": dg.AssetOut(description="Tool specs that failed validation: file, tool, field, message."),
    },
)
def function_pool(context: dg.AssetExecutionContext, magnet: MagnetResource):
    category = context.partition_key
    part = load_category(magnet.settings, category)
    for reject in part.rejects:
        context.log.warning(str(reject))
    tools = to_frame(part.tools, Tool)
    rejects = to_frame(part.rejects, ToolReject)
    yield versioned(
        tools,
        output_name="function_pool",
        metadata={
            **table_metadata(tools, ["name", "tool_class", "executable", "description"]),
            **counts_metadata("tools_by_class", Counter(t.tool_class for t in part.tools)),
            "executable": sum(t.executable for t in part.tools),
            "rejects": len(part.rejects),
        },
    )
    yield versioned(rejects, output_name="tool_rejects", metadata=table_metadata(rejects, ["file", "tool", "field", "message"]))
