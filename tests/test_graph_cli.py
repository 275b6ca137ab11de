"""``magnet graph query`` and ``magnet graph show`` against a store built from the navigation tools."""

import json

import pytest
import typer
from typer.testing import CliRunner

import graph_db
from magnet_assets.cli_graph import parse_params, register
from magnet_lib.graph.dependency import judge_category
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.pool.envs.navigation import NavigationEnv


@pytest.fixture(scope="module")
def app_and_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "graph.kuzu"
    tools = NavigationEnv.tools()
    edges, _ = judge_category(tools, TaskRunner())
    graph_db.build_graph(path, tools, edges)
    app = typer.Typer()
    app.command("version")(lambda: None)  # a second command keeps 'graph' a sub-command
    register(app)
    return app, path


def test_query_prints_a_table_and_json(app_and_graph):
    app, path = app_and_graph
    runner = CliRunner()
    cypher = (
        "MATCH (a:Function {name: $n})-[r:DEPENDS_ON]->(b:Function) RETURN b.name AS dst, r.kind AS kind, r.nested AS nested ORDER BY dst"
    )
    result = runner.invoke(app, ["graph", "query", cypher, "--param", "n=plan_route", "--graph", str(path)])
    assert result.exit_code == 0, result.output
    assert "start_navigation" in result.output and "full_input" in result.output
    result = runner.invoke(app, ["graph", "query", cypher, "-p", "n=plan_route", "--json", "--graph", str(path)])
    rows = json.loads(result.output)
    assert {"dst": "start_navigation", "kind": "full_input", "nested": True} in rows
    limit = runner.invoke(
        app, ["graph", "query", "MATCH (f:Function) RETURN f.name AS name LIMIT $k", "-p", "k=2", "--json", "--graph", str(path)]
    )
    assert len(json.loads(limit.output)) == 2  # '2' was bound as a number


def test_write_is_refused_without_the_flag(app_and_graph):
    app, path = app_and_graph
    runner = CliRunner()
    result = runner.invoke(app, ["graph", "query", "MATCH (f:Function) DETACH DELETE f", "--graph", str(path)])
    assert result.exit_code == 2 and "--write" in result.output and "DELETE" in result.output
    assert graph_db.query(path, "MATCH (f:Function) RETURN count(*) AS n")[0]["n"] == len(NavigationEnv.tools())
    bad = runner.invoke(app, ["graph", "query", "MATCH (f:Nope) RETURN f", "--graph", str(path)])
    assert bad.exit_code == 1 and "query failed" in bad.output
    missing = runner.invoke(app, ["graph", "query", "MATCH (f) RETURN f", "--graph", str(path.parent / "none.kuzu")])
    assert missing.exit_code == 1 and "dependency_graph" in missing.output


def test_show_writes_a_png(app_and_graph, tmp_path):
    app, path = app_and_graph
    out = tmp_path / "nav.png"
    result = CliRunner().invoke(app, ["graph", "show", "--category", "navigation", "--out", str(out), "--graph", str(path)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_parse_params():
    assert parse_params(["a=1", "b=x", "c=[1, 2]", "$d=true", "e=a=b"]) == {"a": 1, "b": "x", "c": [1, 2], "d": True, "e": "a=b"}
    with pytest.raises(typer.BadParameter):
        parse_params(["novalue"])
