"""The graph stage (paper section 3.4): judged dependency edges per category, each category's
part of the one Kuzu graph, the initial random-walk FSPs and the augmented (Merge / Insert /
Split) FSPs, with blocking checks on the walks and the turn limit.

Every asset here is partitioned by category, so Dagster's lineage runs category by category:
a change in one category makes only that category's partitions stale. The writer
``dependency_graph`` is in the ``kuzu`` concurrency pool (limit 1, set up by the CLI's
instance), so category runs go side by side and their writes one at a time. The readers
``fsps`` and ``augmented_fsps`` read their category in one read-only open
(:func:`graph_db.read_category`); one that meets another category's write lock (Kuzu locks
the whole file) retries briefly (:mod:`graph_db.store`) instead of queueing in the pool,
whose blocked steps wait a second or more between claims."""

from collections import Counter

import dagster as dg
import polars as pl

import graph_db
from magnet_assets.metadata import counts_metadata, llm_metadata, table_metadata
from magnet_assets.partitions import category_partitions
from magnet_assets.resources import MagnetResource
from magnet_assets.versions import json_version, versioned
from magnet_lib.graph.dependency import judge_category
from magnet_lib.graph.node_operations import (
    augment_category,
    insert_violations,
    nested_neighbours,
    operation_counts,
    turn_limit_violations,
)
from magnet_lib.graph.walk import initial_fsps, required_states, walk_violations
from magnet_lib.models import FSP, AugmentedFSP, Edge, Tool
from magnet_lib.tables import from_frame, to_frame

#: the Dagster concurrency pool of every write to graph.kuzu (limit 1 on the CLI's instance)
KUZU_POOL = "kuzu"
#: how long a reader step waits for another category's write to end (a write takes a second or two)
READ_WAIT_S = 60.0


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
    with magnet.runner() as runner:
        edges, stats = judge_category(
            tools, runner, candidates=g.candidates, batch=g.judge_batch, prefilter=g.prefilter, seed=settings.seed
        )
        llm = llm_metadata(runner)
    frame = to_frame(edges, Edge)
    context.log.info(
        f"{context.partition_key}: {len(edges)} edges from {stats.candidate_pairs} candidate pairs "
        f"({stats.prefiltered_pairs} dropped by the pre-filter, {stats.judge_items} judge calls)"
    )
    return versioned(
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


def dependency_graph_asset(pool: str | None = KUZU_POOL) -> dg.AssetsDefinition:
    """The ``dependency_graph`` asset; ``pool=None`` for executors that cannot carry Dagster's
    op concurrency (dagster-dask 0.29 fails on a run that has it): the writer lock of
    :mod:`graph_db.store` still serializes the writes."""

    @dg.asset(
        partitions_def=category_partitions,
        group_name="graph",
        pool=pool,
        description="The category's Function nodes and DEPENDS_ON edges in the one Kuzu database at $MAGNET_HOME/graph.kuzu "
        "(replaced in one transaction; other categories untouched, cross-category Cypher works). The edges Parquet is the "
        "source of truth. Data version: a hash of what was stored.",
    )
    def dependency_graph(
        context: dg.AssetExecutionContext, magnet: MagnetResource, dependency_edges: pl.DataFrame, function_pool: pl.DataFrame
    ) -> dg.MaterializeResult:
        path = magnet.settings.graph_path
        report = graph_db.replace_category(path, context.partition_key, function_pool, dependency_edges)
        if report.dropped_edges:
            context.log.warning(f"{report.dropped_edges} edges name a function missing from function_pool (or stored by another category)")
        return dg.MaterializeResult(
            data_version=stored_version(path, context.partition_key),
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "nodes": report.nodes,
                "edges": report.edges,
                "nested_edges": report.nested_edges,
                "dropped_edges": report.dropped_edges,
                **counts_metadata("edges_by_kind", report.edges_by_kind),
            },
        )

    return dependency_graph


dependency_graph = dependency_graph_asset()


def stored_version(path, category: str) -> dg.DataVersion:
    """A hash of the category's nodes and edges as the graph store returns them."""
    view = graph_db.read_category(path, category, lock_wait_s=READ_WAIT_S)
    return json_version([view.functions, view.edges])


def _histogram(values) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items())}


def _failed_checks(results: list[dg.AssetCheckResult]) -> list[dg.AssetCheckResult]:
    return [r for r in results if not r.passed]


def blocking_outcome(results: list[dg.AssetCheckResult], output: dg.Output):
    """The check results, then the output when every blocking check passed; else the step
    fails (the asset stays stale or missing, so the next ``magnet run`` tries it again)."""
    yield from results
    failed = _failed_checks(results)
    if failed:
        names = ", ".join(r.check_name for r in failed)
        raise dg.Failure(f"blocking check(s) failed: {names}; nothing stored", metadata={"failed_checks": names})
    yield output


@dg.asset(
    partitions_def=category_partitions,
    group_name="graph",
    deps=["dependency_graph"],
    description="Initial function signature paths: seeded random walks of walk_length steps from every node of "
    "the category, read from the graph store.",
    check_specs=[
        dg.AssetCheckSpec(
            "fsp_steps_are_graph_edges", asset="fsps", blocking=True, description="Every step of every walk is an edge of the stored graph."
        )
    ],
)
def fsps(context: dg.AssetExecutionContext, magnet: MagnetResource):
    settings = magnet.settings
    g = settings.graph
    category = context.partition_key
    view = graph_db.read_category(settings.graph_path, category, lock_wait_s=READ_WAIT_S)
    adjacency = view.adjacency
    if not adjacency:
        context.log.warning(f"category '{category}' has no function in the graph; re-materialize dependency_graph")
    # with target_items the walks per node follow from the whole pool's size (every category's functions in the graph)
    per_node = settings.walks_for(view.all_functions) if settings.target_items else g.walks_per_node
    drawn: Counter = Counter()
    walks = initial_fsps(
        category,
        adjacency,
        walk_length=g.walk_length,
        walks_per_node=per_node,
        min_turns=g.min_turns,
        seed=settings.seed,
        requires=required_states(view.edges),
        tries=g.walk_tries,
        counts=drawn,
    )
    frame = to_frame(walks, FSP)
    problems = walk_violations(walks, adjacency)
    check = dg.AssetCheckResult(
        check_name="fsp_steps_are_graph_edges",
        passed=not problems,
        metadata={"walks": len(walks), "violations": len(problems), "examples": dg.MetadataValue.json(problems[:10])},
    )
    output = versioned(
        frame,
        metadata={
            **table_metadata(frame, ["fsp_id", "start", "path"]),
            **counts_metadata("length_histogram", _histogram(len(w.path) for w in walks)),
            **counts_metadata("edges_by_kind", view.edges_by_kind),
            "nodes": len(adjacency),
            "start_nodes_with_a_walk": len({w.start for w in walks}),
            "walks_per_node": per_node,
            "walks_drawn": drawn["drawn"],
            "walks_repeated": drawn["repeated"],
            "distinct_walk_share": round(drawn["distinct"] / drawn["drawn"], 4) if drawn["drawn"] else 0.0,
        },
    )
    yield from blocking_outcome([check], output)


@dg.asset(
    partitions_def=category_partitions,
    group_name="graph",
    description="FSPs after Merge -> Insert (variant no_split) and after Split (variant miss_func / miss_params); "
    "every turn records the operation that made it.",
    check_specs=[
        dg.AssetCheckSpec(
            "augmented_fsps_turn_limit",
            asset="augmented_fsps",
            blocking=True,
            description="Every turn calls at most max_calls_per_turn functions.",
        ),
        dg.AssetCheckSpec(
            "augmented_fsps_inserts_are_nested",
            asset="augmented_fsps",
            blocking=True,
            description="Every inserted function is a nested neighbour of the function it follows.",
        ),
    ],
)
def augmented_fsps(context: dg.AssetExecutionContext, magnet: MagnetResource, fsps: pl.DataFrame):
    settings = magnet.settings
    category = context.partition_key
    view = graph_db.read_category(settings.graph_path, category, lock_wait_s=READ_WAIT_S)
    adjacency = view.adjacency
    augmented = augment_category(
        from_frame(fsps, FSP), adjacency, view.functions, settings.graph, settings.seed, required_states(view.edges)
    )
    frame = to_frame(augmented, AugmentedFSP)
    limit = settings.graph.max_calls_per_turn
    over = turn_limit_violations(augmented, limit)
    inserts = insert_violations(augmented, nested_neighbours(adjacency))
    checks = [
        dg.AssetCheckResult(
            check_name="augmented_fsps_turn_limit",
            passed=not over,
            metadata={"max_calls_per_turn": limit, "violations": len(over), "examples": dg.MetadataValue.json(over[:10])},
        ),
        dg.AssetCheckResult(
            check_name="augmented_fsps_inserts_are_nested",
            passed=not inserts,
            metadata={"violations": len(inserts), "examples": dg.MetadataValue.json(inserts[:10])},
        ),
    ]
    output = versioned(
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
    yield from blocking_outcome(checks, output)
