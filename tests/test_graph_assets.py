"""The graph stage through Dagster: edges per category, the Kuzu store, FSPs, augmented FSPs."""

import json

import pytest

import graph_db
from magnet_lib.models import FSP, AugmentedFSP, Edge
from magnet_lib.tables import from_frame

TIDES = [
    {
        "type": "function",
        "function": {
            "name": "find_harbour",
            "description": "Find a harbour by name.",
            "tool_class": "Harbours",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "Name to look for."}},
                "required": ["query"],
            },
            "response": {
                "type": "object",
                "properties": {
                    "harbours": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "harbour_id": {"type": "string", "description": "Identifier of the harbour."},
                                "name": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_tide_height",
            "description": "Tide height at a harbour, in feet.",
            "tool_class": "Tides",
            "parameters": {
                "type": "object",
                "properties": {"harbour_id": {"type": "string", "description": "Identifier of the harbour."}},
                "required": ["harbour_id"],
            },
            "response": {"type": "object", "properties": {"height": {"type": "number"}, "unit": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "convert_length",
            "description": "Convert a length between feet and metres.",
            "tool_class": "Units",
            "parameters": {
                "type": "object",
                "properties": {
                    "value": {"type": "number", "description": "The height to convert."},
                    "from_unit": {"type": "string"},
                    "to_unit": {"type": "string"},
                },
                "required": ["value", "from_unit", "to_unit"],
            },
            "response": {"type": "object", "properties": {"value": {"type": "number"}}},
        },
    },
]


@pytest.fixture
def materialized(dagster_harness):
    h = dagster_harness
    (h.tools_dir / "marine").mkdir()
    (h.tools_dir / "marine" / "tides.json").write_text(json.dumps(TIDES))
    categories = ("navigation", "marine")
    h.add_categories(*categories)
    runs = []
    for category in categories:  # each category writes its own part of the one graph
        runs.append(h.materialize("function_pool", "tool_rejects", "dependency_edges", "dependency_graph", partition=category))
        assert runs[-1].success
    for category in categories:
        assert h.materialize("fsps", "augmented_fsps", partition=category).success
    return h, runs


def test_graph_stage_materializes_and_answers_cypher(materialized):
    h, graph_runs = materialized
    edges = {(e.src, e.dst): e for e in from_frame(h.table("dependency_edges", "navigation"), Edge)}
    assert edges[("get_distance", "convert_distance")].nested
    marine = {(e.src, e.dst): e for e in from_frame(h.table("dependency_edges", "marine"), Edge)}
    assert marine[("find_harbour", "get_tide_height")].kind == "full_input"
    assert marine[("get_tide_height", "convert_length")].nested

    metas = [run.asset_materializations_for_node("dependency_graph")[0].metadata for run in graph_runs]
    assert sum(m["nodes"].value for m in metas) == 15 and [m["edges"].value for m in metas] == [len(edges), len(marine)]
    assert graph_db.stats(h.home / "graph.kuzu")["edges"] == len(edges) + len(marine)

    path = h.home / "graph.kuzu"
    rows = graph_db.query(
        path, "MATCH (a:Function {name: $name})-[r:DEPENDS_ON]->(b:Function) RETURN b.name AS dst, r.kind AS kind", {"name": "plan_route"}
    )
    assert {"dst": "start_navigation", "kind": "full_input"} in rows
    two_hop = graph_db.query(
        path,
        "MATCH (a:Function)-[:DEPENDS_ON]->(b:Function)-[:DEPENDS_ON]->(c:Function) "
        "WHERE a.category = $c RETURN a.name AS a, b.name AS b, c.name AS c",
        {"c": "marine"},
    )
    assert {"a": "find_harbour", "b": "get_tide_height", "c": "convert_length"} in two_hop

    walks = from_frame(h.table("fsps", "navigation"), FSP)
    adjacency = graph_db.adjacency(path, "navigation")
    assert walks and all(b in [d for d, _ in adjacency[a]] for w in walks for a, b in zip(w.path, w.path[1:]))
    augmented = from_frame(h.table("augmented_fsps", "navigation"), AugmentedFSP)
    assert {a.variant for a in augmented} >= {"no_split"} and len(augmented) == 2 * len(walks)
    assert all(len(t.functions) <= 3 for a in augmented for t in a.turns)
    for asset in ("dependency_edges", "fsps", "augmented_fsps"):
        for category in ("navigation", "marine"):
            assert set(h.table(asset, category)["category"].to_list()) <= {category}, (asset, category)
    checks = h.materialize("augmented_fsps", partition="marine").get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)


def test_one_read_of_a_category_is_the_separate_reads(materialized):
    """What fsps and augmented_fsps read in one open is what the one-query readers return;
    only the writer queues in the kuzu pool (the readers retry on a held lock instead)."""
    import dagster as dg

    from magnet_assets.graph import KUZU_POOL

    h, _ = materialized
    path = h.home / "graph.kuzu"
    for category in ("navigation", "marine"):
        view = graph_db.read_category(path, category)
        assert view.adjacency == graph_db.adjacency(path, category)
        assert view.functions == graph_db.functions(path, category)
        assert view.edges == list(graph_db.iter_edges(path, category))
        assert view.edges_by_kind == graph_db.edges_by_kind(path, category)
        assert view.all_functions == len(graph_db.functions(path)) == 15
    pools = {k.to_user_string(): h.defs.get_assets_def(k).op.pool for k in map(dg.AssetKey, ("dependency_graph", "fsps", "augmented_fsps"))}
    assert pools == {"dependency_graph": KUZU_POOL, "fsps": None, "augmented_fsps": None}


def test_write_queries_are_refused(materialized):
    h, _ = materialized
    path = h.home / "graph.kuzu"
    for cypher in [
        "MATCH (f:Function) DETACH DELETE f",
        "CREATE (:Function {name: 'x'})",
        "MATCH (f:Function) SET f.category = 'x'",
        "MERGE (f:Function {name: 'x'})",
        "DROP TABLE DEPENDS_ON",
        "COPY Function FROM 'x.csv'",
    ]:
        with pytest.raises(graph_db.WriteQueryRefused, match="--write"):
            graph_db.query(path, cypher)
    # a word inside a string literal is not a clause
    assert graph_db.query(path, "MATCH (f:Function) WHERE f.description CONTAINS 'create' RETURN count(*) AS n")[0]["n"] >= 0
    graph_db.query(path, "MATCH (f:Function {name: $n}) SET f.tool_class = 'edited'", {"n": "plan_route"}, write=True)
    assert graph_db.query(path, "MATCH (f:Function {name: 'plan_route'}) RETURN f.tool_class AS c")[0]["c"] == "edited"
