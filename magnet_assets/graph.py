"""The graph stage (paper section 3.4): judged dependency edges per category, the Kuzu graph
built from all of them, the initial random-walk FSPs and the augmented (Merge / Insert /
Split) FSPs, with blocking checks on the walks and the turn limit."""

from collections import Counter

import dagster as dg
import polars as pl

import graph_db
from magnet_assets.metadata import counts_metadata, llm_metadata, table_metadata
from magnet_assets.partitions import category_partitions
from magnet_assets.resources import MagnetResource
from magnet_lib.graph.dependency import judge_category
from magnet_lib.graph.node_operations import (
    augment_fsps,
    insert_violations,
    nested_neighbours,
    operation_counts,
    turn_limit_violations,
)
from magnet_lib.graph.walk import initial_fsps, walk_violations
from magnet_lib.models import FSP, AugmentedFSP, Edge, Tool
from magnet_lib.tables import from_frame, to_frame
from magnet_lib.translation.forth_translation import schema_leaves

#: the graph is read per category downstream: another category's change does not touch a partition
CATEGORY_SLICED = {"magnet/category_sliced": "true"}


@dg.asset(
    partitions_def=category_partitions,
    group_name="graph",
    description="Judged edges src -> dst of the local dependency graph: kind (premise / full_input / partial_input), "
    "nested flag, evidence, judge, score.",
)
def dependency_edges(context: dg.AssetExecutionContext, magnet: MagnetResource, function_pool: pl.DataFrame) -> dg.Output:
    settings = magnet.settings
    g = settings.graph
    tools = from_frame(function_pool, Tool)
    runner = magnet.runner()
    try:
        edges, stats = judge_category(
            tools, runner, candidates=g.candidates, batch=g.judge_batch, prefilter=g.prefilter, seed=settings.seed
        )
        llm = llm_metadata(runner)
    finally:
        runner.close()
    frame = to_frame(edges, Edge)
    context.log.info(
        f"{context.partition_key}: {len(edges)} edges from {stats.candidate_pairs} candidate pairs "
        f"({stats.prefiltered_pairs} dropped by the pre-filter, {stats.judge_items} judge calls)"
    )
    return dg.Output(
        frame,
        metadata={
            **table_metadata(frame, ["src", "dst", "kind", "nested", "evidence"]),
            **counts_metadata("edges_by_kind", stats.edges_by_kind),
            "nested_edges": stats.nested_edges,
            "functions": stats.functions,
            "candidate_pairs": stats.candidate_pairs,
            "prefiltered_pairs": stats.prefiltered_pairs,
            "judge_calls": stats.judge_items,
            "nested_calls": stats.nested_items,
            "rejected_items": stats.judge_rejects + stats.nested_rejects,
            **llm,
        },
    )


@dg.asset(
    group_name="graph",
    tags=CATEGORY_SLICED,
    description="The Kuzu database at $MAGNET_HOME/graph.kuzu, rebuilt from every dependency_edges partition "
    "(Function nodes, DEPENDS_ON edges). One writer at a time; readers open it read-only.",
)
def dependency_graph(
    context: dg.AssetExecutionContext, magnet: MagnetResource, dependency_edges: pl.DataFrame, function_pool: pl.DataFrame
) -> dg.MaterializeResult:
    path = magnet.settings.graph_path
    report = graph_db.build_graph(path, function_pool, dependency_edges)
    if report.dropped_edges:
        context.log.warning(f"{report.dropped_edges} edges name a function missing from function_pool; not stored")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "nodes": report.nodes,
            "edges": report.edges,
            "nested_edges": report.nested_edges,
            "dropped_edges": report.dropped_edges,
            **counts_metadata("edges_by_kind", report.edges_by_kind),
            **counts_metadata("nodes_by_category", report.nodes_by_category),
        }
    )


def _histogram(values) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items())}


@dg.asset(
    partitions_def=category_partitions,
    group_name="graph",
    deps=["dependency_graph"],
    description="Initial function signature paths: seeded random walks of walk_length steps from every node of "
    "the category, read from the graph store.",
)
def fsps(context: dg.AssetExecutionContext, magnet: MagnetResource) -> dg.Output:
    settings = magnet.settings
    g = settings.graph
    category = context.partition_key
    adjacency = graph_db.adjacency(settings.graph_path, category)
    if not adjacency:
        context.log.warning(f"category '{category}' has no function in the graph; re-materialize dependency_graph")
    walks = initial_fsps(
        category, adjacency, walk_length=g.walk_length, walks_per_node=g.walks_per_node, min_turns=g.min_turns, seed=settings.seed
    )
    frame = to_frame(walks, FSP)
    return dg.Output(
        frame,
        metadata={
            **table_metadata(frame, ["fsp_id", "start", "path"]),
            **counts_metadata("length_histogram", _histogram(len(w.path) for w in walks)),
            **counts_metadata("edges_by_kind", graph_db.edges_by_kind(settings.graph_path, category)),
            "nodes": len(adjacency),
            "start_nodes_with_a_walk": len({w.start for w in walks}),
        },
    )


@dg.asset(
    partitions_def=category_partitions,
    group_name="graph",
    description="FSPs after Merge -> Insert (variant no_split) and after Split (variant miss_func / miss_params); "
    "every turn records the operation that made it.",
)
def augmented_fsps(context: dg.AssetExecutionContext, magnet: MagnetResource, fsps: pl.DataFrame) -> dg.Output:
    settings = magnet.settings
    category = context.partition_key
    adjacency = graph_db.adjacency(settings.graph_path, category)
    functions = graph_db.functions(settings.graph_path, category)
    required = {f["name"]: f["parameters"].get("required", []) for f in functions}
    outputs = {f["name"]: {n for name, _ in schema_leaves(f["response"]) for n in (name, name.rstrip("s"))} for f in functions}
    augmented = augment_fsps(from_frame(fsps, FSP), nested_neighbours(adjacency), settings.graph, required, settings.seed, outputs)
    frame = to_frame(augmented, AugmentedFSP)
    return dg.Output(
        frame,
        metadata={
            **table_metadata(frame, ["fsp_id", "variant", "turns"]),
            **counts_metadata("variants", Counter(a.variant for a in augmented)),
            **counts_metadata("operation_counts", operation_counts(augmented)),
            **counts_metadata("turns_histogram", _histogram(len(a.turns) for a in augmented)),
            **counts_metadata("calls_per_turn", _histogram(len(t.functions) for a in augmented for t in a.turns)),
            "nested_edges": sum(len(v) for v in nested_neighbours(adjacency).values()),
        },
    )


def _checked_partitions(asset: str, context: dg.AssetCheckExecutionContext, magnet: MagnetResource) -> dict[str, pl.DataFrame]:
    """The tables of the partitions this check run covers, by category.

    Read from the storage contract path (``storage/<asset>/<category>.parquet``) rather than as
    an input: Dagster hands a check on a partitioned asset every materialized partition when
    another asset shares the run, which would re-check (and warn about) all categories."""
    keys = context.partition_keys if (context.has_partition_key or context.has_partition_key_range) else []
    if not keys:  # an unpartitioned run of the check: every materialized category
        keys = [p.stem for p in sorted((magnet.settings.storage_dir / asset).glob("*.parquet"))]
    out = {}
    for key in keys:
        path = magnet.settings.storage_dir / asset / f"{key}.parquet"
        if path.exists():
            out[key] = pl.read_parquet(path)
    return out


@dg.asset_check(asset=fsps, blocking=True, description="Every step of every walk is an edge of the stored graph.")
def fsp_steps_are_graph_edges(context: dg.AssetCheckExecutionContext, magnet: MagnetResource) -> dg.AssetCheckResult:
    problems: list[str] = []
    walks = 0
    for category, part in _checked_partitions("fsps", context, magnet).items():
        walks += part.height
        problems += walk_violations(from_frame(part, FSP), graph_db.adjacency(magnet.settings.graph_path, category))
    return dg.AssetCheckResult(
        passed=not problems, metadata={"walks": walks, "violations": len(problems), "examples": dg.MetadataValue.json(problems[:10])}
    )


@dg.asset_check(asset=augmented_fsps, blocking=True, description="Every turn calls at most max_calls_per_turn functions.")
def augmented_fsps_turn_limit(context: dg.AssetCheckExecutionContext, magnet: MagnetResource) -> dg.AssetCheckResult:
    limit = magnet.settings.graph.max_calls_per_turn
    problems: list[str] = []
    for part in _checked_partitions("augmented_fsps", context, magnet).values():
        problems += turn_limit_violations(from_frame(part, AugmentedFSP), limit)
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"max_calls_per_turn": limit, "violations": len(problems), "examples": dg.MetadataValue.json(problems[:10])},
    )


@dg.asset_check(
    asset=augmented_fsps, blocking=True, description="Every inserted function is a nested neighbour of the function it follows."
)
def augmented_fsps_inserts_are_nested(context: dg.AssetCheckExecutionContext, magnet: MagnetResource) -> dg.AssetCheckResult:
    problems: list[str] = []
    for category, part in _checked_partitions("augmented_fsps", context, magnet).items():
        nested = nested_neighbours(graph_db.adjacency(magnet.settings.graph_path, category))
        problems += insert_violations(from_frame(part, AugmentedFSP), nested)
    return dg.AssetCheckResult(
        passed=not problems, metadata={"violations": len(problems), "examples": dg.MetadataValue.json(problems[:10])}
    )
