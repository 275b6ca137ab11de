"""The read-only guard of ``graph_db.query``: a refusal corpus (every trick of the stress pass
and its lowercase, comment, string and number-glued variants), reads that must pass, readers
waiting for a held lock, leftovers of killed builds, and the CLI's small messages (issue 15)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import graph_db
from magnet_assets.cli_graph import register
from magnet_lib.pool.envs.navigation import NavigationEnv


@pytest.fixture(scope="module")
def graph_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("guard") / "graph.kuzu"
    graph_db.build_graph(path, NavigationEnv.tools(), [])
    return path


TRICKS = [
    "UNWIND [1] AS x WITH x LIMIT 1LOAD FROM '/etc/passwd' (file_format='csv', header=false, delim=':') RETURN * LIMIT 3",
    "LOAD FROM '/etc/passwd' (header=false) RETURN *",
    "LOAD WITH HEADERS (a STRING) FROM '/etc/passwd' RETURN *",
    "COPY Function TO '/tmp/functions.csv'",
    "COPY (MATCH (f:Function) RETURN f.name) TO '/tmp/names.csv'",
    "COPY Function FROM '/tmp/functions.csv'",
    "EXPORT DATABASE '/tmp/magnet_export'",
    "IMPORT DATABASE '/tmp/magnet_export'",
    "ATTACH '/tmp/other.kuzu' AS other (dbtype kuzu)",
    "USE other",
    "INSTALL httpfs",
    "UNINSTALL httpfs",
    "LOAD EXTENSION httpfs",
    "LOAD httpfs",
    "CREATE (:Function {name: 'x'})",
    "MERGE (:Function {name: 'x'})",
    "MATCH (f:Function) SET f.description = 'x'",
    "MATCH (f:Function) DELETE f",
    "MATCH (f:Function) DETACH DELETE f",
    "MATCH (f:Function) REMOVE f.description",
    "DROP TABLE DEPENDS_ON",
    "ALTER TABLE Function ADD extra INT64",
    "ALTER TABLE Function RENAME TO Fn",
    "CREATE NODE TABLE Extra(id INT64 PRIMARY KEY)",
    "COMMENT ON TABLE Function IS 'x'",
    "CHECKPOINT",
    "BEGIN TRANSACTION",
    "CALL threads=1",
    "CALL show_tables() RETURN *; CALL spill_to_disk=false",
    "CALL CREATE_FTS_INDEX('Function', 'idx', ['description'])",
    "CALL READ_CSV_SERIAL('/etc/passwd') RETURN *",
    "CALL PROJECT_GRAPH_CYPHER('g', 'LOAD FROM \"/etc/passwd\" RETURN *')",
    "MATCH (f:Function) RETURN f.name; DROP TABLE Function",
    "PROFILE MATCH (f:Function) SET f.executable = false",
    "EXPLAIN CREATE (:Function {name: 'y'})",
    "MATCH (f:Function) WITH f LIMIT 1 UPDATE EXTENSION httpfs",
]


def _variants(cypher: str) -> dict[str, str]:
    return {
        "as is": cypher,
        "lowercase": cypher.lower(),
        "mixed case": cypher.swapcase(),
        "comments for spaces": cypher.replace(" ", "/**/"),
        "newlines and tabs": cypher.replace(" ", "\n\t"),
        "line comment first": "// only a read\n" + cypher,
        "glued to a number": "UNWIND [1] AS x WITH x LIMIT 1" + cypher,
        "glued to a float": "UNWIND [1] AS x WITH x LIMIT 1.5e2" + cypher,
        "glued to a string": "WITH 'a' AS s WITH s WHERE s = 'a'" + cypher,
        "glued to a backtick name": "MATCH (`f`:Function) WITH `f`" + cypher,
        "glued to a comment": "MATCH (f:Function) WITH f /* read */" + cypher,
        "after a semicolon": "RETURN 1;" + cypher,
        "glued to a numbered parameter": "UNWIND $xs AS x WITH x LIMIT $1" + cypher,
    }


CORPUS = [(f"{i}: {kind}", text) for i, trick in enumerate(TRICKS) for kind, text in _variants(trick).items()]


@pytest.mark.parametrize("cypher", [c for _, c in CORPUS], ids=[i for i, _ in CORPUS])
def test_every_trick_is_refused(cypher):
    assert graph_db.write_clause(cypher), cypher
    with pytest.raises(graph_db.WriteQueryRefused, match="--write"):
        graph_db.query("/nonexistent/graph.kuzu", cypher)  # refused before anything is opened


def test_the_load_from_trick_reads_the_file_only_with_write(graph_path, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("root:x:0\nuser:x:1\n")
    trick = f"UNWIND [1] AS x WITH x LIMIT 1LOAD FROM '{secret}' (file_format='csv', header=false, delim=':') RETURN * LIMIT 3"
    with pytest.raises(graph_db.WriteQueryRefused, match="LOAD"):
        graph_db.query(graph_path, trick)
    rows = graph_db.query(graph_path, trick, write=True)  # the guard is what stood between the query and the file
    assert any("root" in json.dumps(row) for row in rows)


READS = [
    ("MATCH (f:Function) RETURN f.name AS name ORDER BY name LIMIT 2", {}),
    ("MATCH (f:Function) WHERE f.description CONTAINS 'DELETE' OR f.name = 'LOAD FROM x' RETURN count(*) AS n", {}),
    ('MATCH (f:Function) WHERE f.name <> "CREATE (:x)" RETURN count(*) AS n', {}),
    ("MATCH (f:Function) // DROP TABLE Function\nRETURN count(*) AS n", {}),
    ("MATCH (f:Function) /* SET f.x = 1 */ RETURN count(*) AS n", {}),
    ("WITH 1 AS `set`, 2 AS `copy` RETURN `set` + `copy` AS total", {}),
    ("MATCH (a:Function)-[r:DEPENDS_ON*1..3]->(b:Function) RETURN count(*) AS n", {}),
    ("MATCH (f:Function {name: $n}) RETURN f.tool_class AS c", {"n": "plan_route"}),
    ("UNWIND [1, 2, 3] AS x WITH x LIMIT 2 RETURN sum(x) AS total", {}),
    ("CALL show_tables() RETURN name ORDER BY name", {}),
    ("CALL table_info('Function') RETURN count(*) AS n", {}),
    ("RETURN 'it\\'s a LOAD' AS s", {}),
    ("WITH 1 AS a$b RETURN a$b AS v", {}),
]


@pytest.mark.parametrize("cypher,params", READS, ids=[str(i) for i in range(len(READS))])
def test_reads_pass_and_run(graph_path, cypher, params):
    assert graph_db.write_clause(cypher) is None
    assert isinstance(graph_db.query(graph_path, cypher, params), list)


def test_the_tokenizer_splits_as_kuzu_does():
    kinds = [(t.kind, t.text) for t in graph_db.tokenize("LIMIT 1LOAD 1.5e2AS 'a\\'b'`x``y`$p $1x /* c */ é")]
    assert kinds == [
        ("word", "LIMIT"),
        ("number", "1"),
        ("word", "LOAD"),
        ("number", "1.5e2"),
        ("word", "AS"),
        ("string", "'a\\'b'"),
        ("escaped", "`x``y`"),
        ("param", "$p"),
        ("param", "$1"),
        ("word", "x"),
        ("symbol", "é"),
    ]
    assert graph_db.query_parameters("MATCH (f {name: $n}) WHERE f.x = $n OR $`m` RETURN 'x $y' // $z") == ["n", "m"]


def test_missing_or_unused_parameters_are_clear(graph_path):
    with pytest.raises(graph_db.MissingParameter, match=r"\$n .*--param n=VALUE"):
        graph_db.query(graph_path, "MATCH (f:Function {name: $n}) RETURN f.name")
    with pytest.raises(graph_db.MissingParameter, match="extra"):
        graph_db.query(graph_path, "MATCH (f:Function) RETURN f.name", {"extra": 1})


def _hold(path) -> subprocess.Popen:
    """A second process holding the database open for writing until its stdin gets a line."""
    code = (
        "import sys, graph_db\n"
        "g = graph_db.open_graph(sys.argv[1], read_only=False)\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n"
        "g.close()\n"
    )
    root = Path(__file__).resolve().parent.parent  # this checkout's graph_db
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_reader_waits_for_a_held_lock(tmp_path):
    path = tmp_path / "graph.kuzu"
    graph_db.build_graph(path, NavigationEnv.tools(), [])
    holder = _hold(path)
    try:
        with pytest.raises(graph_db.GraphLocked, match="held by another process"):
            graph_db.query(path, "MATCH (f:Function) RETURN count(*) AS n", lock_wait_s=0.2)
        result: dict = {}
        reader = threading.Thread(
            target=lambda: result.update(rows=graph_db.query(path, "MATCH (f:Function) RETURN count(*) AS n", lock_wait_s=60))
        )
        reader.start()
        reader.join(0.5)
        assert reader.is_alive()  # still waiting: the writer holds the database
    finally:
        holder.communicate("release\n", timeout=60)
    reader.join(60)
    assert result["rows"] == [{"n": len(NavigationEnv.tools())}]


def test_a_category_read_waits_for_a_writer_to_finish(tmp_path):
    """read_category shares the writer lock: it waits while a writer holds it (never meeting
    Kuzu's file lock or a half-done checkpoint), gives up with GraphLocked after its wait,
    and readers do not wait for each other."""
    path = tmp_path / "graph.kuzu"
    graph_db.build_graph(path, NavigationEnv.tools(), [])
    with graph_db.writer_lock(path):
        with pytest.raises(graph_db.GraphLocked, match="held by another process"):
            graph_db.read_category(path, "navigation", lock_wait_s=0.2)
        result: dict = {}
        reader = threading.Thread(target=lambda: result.update(view=graph_db.read_category(path, "navigation", lock_wait_s=60)))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive()  # waiting for the writer
    reader.join(60)
    assert len(result["view"].functions) == len(NavigationEnv.tools())
    with graph_db.reader_lock(path, 0.1):  # another reader holds it: a read goes ahead
        assert graph_db.read_category(path, "navigation", lock_wait_s=0.2).all_functions == len(NavigationEnv.tools())


def test_leftovers_of_killed_builds_are_removed(tmp_path):
    path = tmp_path / "graph.kuzu"
    graph_db.build_graph(path, NavigationEnv.tools(), [])
    (tmp_path / ".graph.kuzu.building-dead0001").write_bytes(b"half a database")
    (tmp_path / ".graph.kuzu.building-dead0001.wal").write_bytes(b"wal")
    (tmp_path / ".graph.kuzu.old-dead0002").mkdir()
    assert len(graph_db.leftovers(path)) == 2
    graph_db.build_graph(path, NavigationEnv.tools(), [])
    assert graph_db.leftovers(path) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".graph")) == []
    assert graph_db.stats(path)["nodes"] == len(NavigationEnv.tools())


def test_the_partitioned_graph_assets_path_removes_leftovers_too(tmp_path):
    """dependency_graph replaces one category (replace_category), never the whole file."""
    path = tmp_path / "graph.kuzu"
    tools = NavigationEnv.tools()
    graph_db.replace_category(path, "navigation", tools, [])
    (tmp_path / ".graph.kuzu.building-dead0003").write_bytes(b"half a database")
    (tmp_path / ".graph.kuzu.old-dead0004").mkdir()
    assert len(graph_db.leftovers(path)) == 2
    graph_db.replace_category(path, "navigation", tools, [])
    assert graph_db.leftovers(path) == []
    assert graph_db.stats(path)["nodes"] == len(NavigationEnv.tools())


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    app.command("version")(lambda: None)  # a second command keeps 'graph' a sub-command
    register(app)
    return app


def test_cli_says_0_rows_and_names_a_missing_param(app, graph_path):
    runner = CliRunner()
    none = runner.invoke(app, ["graph", "query", "MATCH (f:Function {name: 'nope'}) RETURN f.name", "--graph", str(graph_path)])
    assert none.exit_code == 0 and none.output.strip() == "0 rows"
    missing = runner.invoke(app, ["graph", "query", "MATCH (f:Function {name: $n}) RETURN f.name", "--graph", str(graph_path)])
    assert missing.exit_code == 2 and "$n" in missing.output and "--param n=VALUE" in missing.output
    trick = runner.invoke(app, ["graph", "query", TRICKS[0], "--graph", str(graph_path)])
    assert trick.exit_code == 2 and "LOAD" in trick.output and "--write" in trick.output


def test_show_help_matches_the_drawing(app):
    from magnet_assets.cli_graph import KIND_COLOURS

    help_text = " ".join(CliRunner().invoke(app, ["graph", "show", "--help"], env={"COLUMNS": "200"}).output.split())
    assert not re.search(r"\bred\b", help_text)
    assert "thick and solid" in help_text and all(kind in help_text for kind in KIND_COLOURS)


# ------------------------------------------------------------------------- property-based

_READ_PREFIXES = [
    "MATCH (f:Function) WITH f LIMIT 1",
    "UNWIND [1] AS x WITH x LIMIT 1",
    "WITH 'a' AS s WITH s",
    "WITH `x` AS y",
    "RETURN 1;",
]
_GLUE = ["", " ", "\n", "\t", "/**/", "/* DROP */", "// c\n", "\r\n"]
_KEYWORDS = [w for w in graph_db.store.WRITE_CLAUSES]


@hyp_settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(_READ_PREFIXES),
    st.sampled_from(_GLUE),
    st.sampled_from(_KEYWORDS),
    st.lists(st.booleans(), min_size=12, max_size=12),
    st.text(alphabet=" ()'\"`/*-$0123456789abcXYZ\n", max_size=20),
)
def test_a_keyword_glued_anywhere_is_refused(prefix, glue, keyword, upper, suffix):
    word = "".join(c.upper() if u else c.lower() for c, u in zip(keyword, upper + [True] * len(keyword)))
    if not glue and prefix[-1].isalpha():
        glue = " "  # 'WITH screate' is one name, in Kuzu too
    cypher = prefix + glue + word + (" " + suffix if suffix[:1].isalnum() else suffix)
    assert graph_db.write_clause(cypher), cypher


@hyp_settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.sampled_from(["string", "comment", "escaped"]))
def test_anything_inside_strings_comments_and_backticks_is_a_read(text, where):
    if where == "string":
        inner = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        cypher = f"RETURN {inner} AS s"
    elif where == "comment":
        cypher = "MATCH (f:Function) /* " + text.replace("*/", "* /") + " */ RETURN f.name"
    else:
        cypher = "WITH 1 AS `" + text.replace("`", "``") + "` RETURN 1"
    assert graph_db.write_clause(cypher) is None, cypher
