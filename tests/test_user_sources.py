"""Users' own executable tools (source.toml): a Python class and a real MCP stdio server
(MCPServer, formerly FastMCP, from the official SDK) as categories, end to end through the
Dagster assets to query_call_pairs; broken sources as rejects while the pool loads."""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import pytest

from magnet_lib.models import Call, Episode, Tool, ToolReject
from magnet_lib.pool.execution import make_runtime
from magnet_lib.pool.function_pool import discover_categories, load_category, load_pool
from magnet_lib.pool.sources.config import read_source
from magnet_lib.pool.sources.mcp_server import close_servers, server_for
from magnet_lib.settings import MagnetSettings
from magnet_lib.tables import from_frame

HERE = Path(__file__).parent / "user_tools"

LIBRARY_TOML = """
[python]
file = "library.py"
class = "Library"
init = { opening_books = 3 }
"""

NOTES_TOML = """
[mcp]
command = ["python", "notes_server.py"]
reset_tool = "reset"
exclude = ["server_pid"]
start_timeout = 60
"""


def add_library(tools_dir: Path, name: str = "library", toml: str = LIBRARY_TOML) -> Path:
    folder = tools_dir / name
    folder.mkdir(parents=True)
    shutil.copy(HERE / "library.py", folder / "library.py")
    (folder / "source.toml").write_text(toml)
    return folder


def add_notes(tools_dir: Path, name: str = "notebook", toml: str = NOTES_TOML) -> Path:
    folder = tools_dir / name
    folder.mkdir(parents=True)
    shutil.copy(HERE / "notes_server.py", folder / "notes_server.py")
    (folder / "source.toml").write_text(toml)
    return folder


@pytest.fixture(autouse=True)
def _stop_servers():
    yield
    close_servers()


@pytest.fixture
def tools_dir(magnet_home, monkeypatch) -> Path:
    path = magnet_home.parent / "tools"
    path.mkdir()
    monkeypatch.setenv("MAGNET_TOOLS_DIR", str(path))
    return path


def settings() -> MagnetSettings:
    return MagnetSettings(builtin_tools=False)


def outputs_by_call(episode: Episode) -> list[tuple[Call, dict]]:
    return [(c, o) for t in episode.turns for c, o in zip(t.calls, t.outputs, strict=True)]


# --------------------------------------------------------------------------- end to end


def check_library(episodes: list[Episode]) -> None:
    """Accepted episodes whose outputs are what the real class returns when their calls are
    replayed on a fresh instance with the episode's seed, and state carried across turns."""
    from tests.user_tools.library import Library

    library = [e for e in episodes if e.status == "ok"]
    assert library
    for episode in library:
        replay = Library(seed=episode.seed, opening_books=3)
        for call, output in outputs_by_call(episode):
            result = getattr(replay, call.name)(**call.arguments)
            assert output == (result if isinstance(result, dict) else {"result": result})
    # a loan made in one turn is closed in a later one
    assert any(
        c.name == "return_book" and any(c.arguments["loan_id"] == o.get("loan_id") for t in e.turns[:k] for o in t.outputs)
        for e in library
        for k, turn in enumerate(e.turns)
        for c in turn.calls
    ), "no episode used a loan from an earlier turn"


def check_notebook(episodes: list[Episode]) -> None:
    """Outputs came from the server (its seeded ids), and a note written in one turn is read
    or appended to in a later turn."""
    notebook = [e for e in episodes if e.status == "ok"]
    assert notebook
    for episode in notebook:
        written: dict[str, str] = {}
        for call, output in outputs_by_call(episode):
            assert "error" not in output
            if call.name == "write_note":
                assert output["note_id"].startswith(f"NT-{episode.seed}-")
                written[output["note_id"]] = output["text"]
            if call.name == "read_note":
                assert output["text"].startswith(written[call.arguments["note_id"]])
    assert any(
        k > 0 and any(c.name in ("read_note", "append_to_note") for c in turn.calls) for e in notebook for k, turn in enumerate(e.turns)
    )


def test_python_class_and_mcp_server_reach_query_call_pairs(tools_dir):
    """The library path of the assets: function_pool -> edges -> walks -> augmented FSPs ->
    query_call_pairs (the Dagster path is the slow test below)."""
    from magnet_lib.distillation.quality import executability
    from magnet_lib.distillation.teacher import distill
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.translation.episodes import translate
    from tests.translation_fixtures import augmented_for

    add_library(tools_dir)
    add_notes(tools_dir)
    s = settings()
    runner = TaskRunner(s.llm)
    for category, check in (("library", check_library), ("notebook", check_notebook)):
        part = load_category(s, category)
        assert part.tools and not part.rejects and all(t.executable for t in part.tools)
        episodes = translate(augmented_for(part.tools, s, runner), part.tools, s, runner)
        check(episodes)
        # distillation executes the calls again, in fresh worlds: every one works
        trajectories = [r.trajectory for r in distill(episodes, part.tools, runner) if r.trajectory is not None]
        assert trajectories
        ok, total = executability(trajectories)
        assert total and ok == total


@pytest.mark.slow
def test_user_sources_through_the_dagster_assets(dagster_harness):
    h = dagster_harness
    add_library(h.tools_dir)
    add_notes(h.tools_dir)
    categories = ("library", "notebook")
    h.add_categories(*categories)
    for category in categories:
        assert h.materialize("function_pool", "tool_rejects", "dependency_edges", partition=category).success
        assert h.materialize("dependency_graph", partition=category).success  # each category writes its own nodes and edges
    for category in categories:
        assert h.materialize("fsps", "augmented_fsps", "query_call_pairs", partition=category).success
    pool = {t.name: t for c in categories for t in from_frame(h.table("function_pool", c), Tool)}
    assert all(t.executable for t in pool.values())
    assert pool["lend_book"].source.endswith("library/source.toml#python")
    assert pool["write_note"].source.endswith("notebook/source.toml#mcp") and "reset" not in pool
    check_library(from_frame(h.table("query_call_pairs", "library"), Episode))
    check_notebook(from_frame(h.table("query_call_pairs", "notebook"), Episode))


# --------------------------------------------------------------------------- rejects


def test_broken_sources_are_rejects_and_the_pool_loads(tools_dir):
    add_library(tools_dir)
    broken = tools_dir / "broken"
    broken.mkdir()
    (broken / "source.toml").write_text('[python]\nfile = "x.py"\nclass = \n')
    add_library(tools_dir, "missing_class", LIBRARY_TOML.replace('"Library"', '"Librarian"'))
    crashing = tools_dir / "crashing"
    crashing.mkdir()
    shutil.copy(HERE / "crashing_server.py", crashing / "crashing_server.py")
    (crashing / "source.toml").write_text('[mcp]\ncommand = ["python", "crashing_server.py"]\n')
    keys = tools_dir / "keys"
    keys.mkdir()
    (keys / "source.toml").write_text('[mcp]\nurl = "http://127.0.0.1:9/mcp"\nheaders = { Authorization = "Bearer sk-123" }\n')
    hanging = tools_dir / "hanging"
    hanging.mkdir()
    (hanging / "hang.py").write_text("import time\ntime.sleep(120)\n")
    (hanging / "source.toml").write_text('[mcp]\ncommand = ["python", "hang.py"]\nstart_timeout = 1\n')
    userinfo = tools_dir / "userinfo"
    userinfo.mkdir()
    (userinfo / "source.toml").write_text('[mcp]\nurl = "http://me:hunter2@127.0.0.1:9/mcp"\n')
    escape = tools_dir / "escape"
    escape.mkdir()
    (escape / "source.toml").write_text('[python]\nfile = "../library/library.py"\nclass = "Library"\n')
    bad_init = add_library(tools_dir, "bad_init", LIBRARY_TOML.replace("opening_books = 3", "shelves = 3"))
    (bad_init / "library.py").write_text((HERE / "library.py").read_text().replace("def add_book", "def add_volume"))

    pool = load_pool(settings())
    assert sorted({t.category for t in pool.tools}) == ["library"]
    by_category: dict[str, list[ToolReject]] = {}
    for r in pool.rejects:
        by_category.setdefault(r.category, []).append(r)
    assert set(by_category) == {"broken", "missing_class", "crashing", "hanging", "keys", "userinfo", "escape", "bad_init"}

    (reject,) = by_category["broken"]
    assert reject.file.endswith("broken/source.toml") and reject.field == "toml" and "malformed TOML" in reject.message
    (reject,) = by_category["missing_class"]
    assert reject.field == "python.class" and reject.tool == "<class Librarian>" and "has no class 'Librarian'" in reject.message
    assert "library.py" in reject.message
    (reject,) = by_category["crashing"]
    assert reject.field == "mcp.command" and "crashing_server.py" in reject.message
    assert "cannot open the database file" in reject.message  # the server's stderr says why
    (reject,) = by_category["keys"]
    assert reject.field == "mcp" and "environment variable" in reject.message and "sk-123" not in reject.message
    (reject,) = by_category["hanging"]
    assert reject.field == "mcp.command" and "did not start and list its tools within 1 s" in reject.message
    (reject,) = by_category["userinfo"]
    assert reject.field == "mcp" and "password" in reject.message and "hunter2" not in reject.message
    (reject,) = by_category["escape"]
    assert reject.field == "python.file" and "outside the category folder" in reject.message
    (reject,) = by_category["bad_init"]
    assert reject.field == "python.init" and "shelves" in reject.message


def test_a_source_without_a_table_or_with_unknown_keys_names_the_key(tools_dir):
    folder = tools_dir / "odd"
    folder.mkdir()
    (folder / "source.toml").write_text('[python]\nfile = "a.py"\nclass = "C"\ntimeout = 3\n')
    rejects = load_category(settings(), "odd").rejects
    assert [(r.field, r.message) for r in rejects] == [("python.timeout", "unknown key")]
    (folder / "source.toml").write_text('[python]\nfile = "a.py"\nmodule = "b"\nclass = "C"\n')
    (reject,) = load_category(settings(), "odd").rejects
    assert reject.field == "python" and "exactly one of 'file' and 'module'" in reject.message
    (folder / "source.toml").write_text("[pyhton]\n")
    assert [r.field for r in load_category(settings(), "odd").rejects] == ["pyhton"]


# --------------------------------------------------------------------------- Python classes


def test_python_tools_schemas_errors_and_fresh_instances(tools_dir):
    add_library(tools_dir)
    tools = {t.name: t for t in load_category(settings(), "library").tools}
    assert set(tools) == {"add_book", "lend_book", "return_book", "count_available"}  # user_values is not a tool
    lend = tools["lend_book"]
    assert lend.parameters["required"] == ["book_id", "member_name"]
    assert lend.parameters["properties"]["book_id"]["description"] == "The catalogue id of the book."
    assert set(lend.response["properties"]) == {"loan_id", "book_id", "member_name"}
    assert tools["count_available"].response["properties"]["result"]["type"] == "integer"

    first = make_runtime(list(tools.values()), seed=4)
    assert first.execute(Call(name="lend_book", arguments={"book_id": "BK-1000", "member_name": "Ada"}))["loan_id"] == "LN-2000"
    again = first.execute(Call(name="lend_book", arguments={"book_id": "BK-1000", "member_name": "Ada"}))
    assert again == {"error": {"code": "ValueError", "message": "lend_book: BK-1000 is already lent"}}
    assert first.execute(Call(name="return_book", arguments={"loan_id": "LN-9"}))["error"]["code"] == "KeyError"
    assert first.execute(Call(name="lend_book", arguments={"book_id": 7}))["error"]["code"] == "invalid_arguments"
    snapshot = copy.deepcopy(first)
    assert first.execute(Call(name="count_available"))["result"] == 2
    # a fresh instance per episode; a snapshot is its own world
    second = make_runtime(list(tools.values()), seed=4)
    assert second.execute(Call(name="count_available")) == {"result": 3}
    snapshot.execute(Call(name="add_book", arguments={"title": "Dune", "author": "Frank Herbert"}))
    assert snapshot.execute(Call(name="count_available")) == {"result": 3} and first.execute(Call(name="count_available")) == {"result": 2}
    assert second.initial_state["library#python"]["seed"] == 4


def test_python_call_time_limit_and_docs_file(tools_dir):
    folder = tools_dir / "slow"
    folder.mkdir()
    (folder / "slow.py").write_text(
        "import time\n\n"
        "class Slow:\n"
        "    def nap(self, seconds: float) -> dict:\n"
        "        '''Sleep a while.'''\n"
        "        time.sleep(seconds)\n"
        "        return {'slept': seconds}\n"
        "    def undocumented(self, x):\n"
        "        return x\n"
    )
    (folder / "docs.jsonl").write_text(
        '{"name": "nap", "description": "Sleep for some seconds.", "parameters": {"type": "dict", "properties": '
        '{"seconds": {"type": "float", "description": "How long."}}, "required": ["seconds"]}}\n'
        '{"name": "fly", "description": "Not a method.", "parameters": {"type": "dict", "properties": {}}}\n'
    )
    (folder / "source.toml").write_text('[python]\nfile = "slow.py"\nclass = "Slow"\ndocs = "docs.jsonl"\ncall_timeout = 0.5\n')
    part = load_category(settings(), "slow")
    assert [t.name for t in part.tools] == ["nap"] and part.tools[0].description == "Sleep for some seconds."
    assert part.tools[0].parameters["properties"]["seconds"]["type"] == "number"
    assert [(r.tool, r.field) for r in part.rejects] == [("fly", "name")]
    runtime = make_runtime(part.tools, seed=0)
    assert runtime.execute(Call(name="nap", arguments={"seconds": 0.01})) == {"slept": 0.01}
    assert runtime.execute(Call(name="nap", arguments={"seconds": 5}))["error"]["code"] == "timeout"
    # the instance may be half-changed: not used again in the episode
    assert runtime.execute(Call(name="nap", arguments={"seconds": 0.01}))["error"]["code"] == "environment_unavailable"
    # without docs, a parameter without a type hint is a reject naming the tool
    (folder / "docs.jsonl").unlink()
    (folder / "source.toml").write_text('[python]\nfile = "slow.py"\nclass = "Slow"\n')
    (reject,) = load_category(settings(), "slow").rejects
    assert reject.tool == "undocumented" and "'x' needs a type hint" in reject.message


def test_editing_a_named_file_changes_only_that_categorys_version(tools_dir):
    library = add_library(tools_dir)
    add_library(tools_dir, "other")
    before = {c: s.version() for c, s in discover_categories(settings()).items()}
    with (library / "library.py").open("a") as f:
        f.write("\n# a comment\n")
    after = {c: s.version() for c, s in discover_categories(settings()).items()}
    assert after["library"] != before["library"] and after["other"] == before["other"]
    (library / "source.toml").write_text(LIBRARY_TOML.replace("3", "4"))
    assert discover_categories(settings())["library"].version() != after["library"]


# --------------------------------------------------------------------------- MCP servers


def test_mcp_isolation_by_reset_and_replay_and_a_server_that_dies(tools_dir):
    add_notes(tools_dir, "jottings")
    tools = load_category(settings(), "jottings").tools
    assert {t.name for t in tools} == {"write_note", "read_note", "append_to_note", "find_notes"}
    write = next(t for t in tools if t.name == "write_note")
    assert set(write.response["properties"]) == {"note_id", "topic", "text"}  # outputSchema
    assert write.description == "Write a new note in the notebook." and write.tool_class == "notebook"  # the server's name
    assert write.parameters["properties"]["topic"]["description"] == "What the note is about, e.g. 'groceries'."
    one = make_runtime(tools, seed=1)
    note = one.execute(Call(name="write_note", arguments={"topic": "trip", "text": "pack"}))
    assert note["note_id"] == "NT-1-001"
    two = make_runtime(tools, seed=2)  # the reset tool starts a fresh notebook
    assert two.execute(Call(name="find_notes", arguments={"topic": "trip"})) == {"note_ids": [], "count": 0}
    # episode one goes on as if it had the server alone: reset and its calls replayed
    assert one.execute(Call(name="read_note", arguments={"note_id": "NT-1-001"}))["text"] == "pack"
    assert one.execute(Call(name="read_note", arguments={"note_id": "NT-9-001"}))["error"]["code"] == "tool_error"
    assert one.execute(Call(name="write_note", arguments={"topic": "trip"}))["error"]["code"] == "invalid_arguments"

    # the server dies mid-run: calls become error outputs with the reason, nothing raises
    server = server_for(next(iter(_configs(tools_dir, "jottings"))))
    _kill(server)
    output = one.execute(Call(name="find_notes", arguments={"topic": "trip"}))
    assert output["error"]["code"] == "tool_server_unavailable"
    # ... and the category's episodes are rejected with the reason
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.translation.episodes import translate
    from tests.translation_fixtures import augmented_for

    s = settings()
    runner = TaskRunner(s.llm)
    episodes = translate(augmented_for(tools, s, runner), tools, s, runner)
    assert episodes and all(e.status == "rejected" for e in episodes)
    assert any("tool_server_unavailable" in e.reject_reason and "not running" in e.reject_reason for e in episodes)


def _configs(tools_dir: Path, category: str):
    config, _ = read_source(tools_dir / category / "source.toml", category)
    yield config


def _kill(server) -> None:
    """End the server process the way a crash would."""
    import os
    import signal

    os.kill(server.call("server_pid", {})["result"], signal.SIGKILL)


def test_mcp_streamable_http_url(tools_dir, tmp_path):
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "http_server.py"
    script.write_text(
        (HERE / "notes_server.py").read_text().replace("app.run()", f"app.run('streamable-http', host='127.0.0.1', port={port})")
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        folder = tools_dir / "remote"
        folder.mkdir()
        (folder / "source.toml").write_text(
            f'[mcp]\nurl = "http://127.0.0.1:{port}/mcp"\nreset_tool = "reset"\nheaders = {{ X-Token = "${{NOTES_TOKEN}}" }}\n'
        )
        import os

        os.environ["NOTES_TOKEN"] = "secret-from-env"
        try:
            part = load_category(settings(), "remote")
        finally:
            del os.environ["NOTES_TOKEN"]
        assert not part.rejects and {t.name for t in part.tools} >= {"write_note", "read_note"}
        runtime = make_runtime(part.tools, seed=5)
        assert runtime.execute(Call(name="write_note", arguments={"topic": "a", "text": "b"}))["note_id"] == "NT-5-001"
        assert "secret-from-env" not in (folder / "source.toml").read_text()
    finally:
        close_servers()
        process.terminate()
        process.wait(timeout=10)


def test_python_module_source(tools_dir):
    folder = tools_dir / "lending"
    folder.mkdir()
    (folder / "source.toml").write_text('[python]\nmodule = "tests.user_tools.library"\nclass = "Library"\nexclude = ["count_available"]\n')
    part = load_category(settings(), "lending")
    assert {t.name for t in part.tools} == {"add_book", "lend_book", "return_book"} and not part.rejects
    (source,) = [s for c, s in discover_categories(settings()).items() if c == "lending"]
    config, _ = read_source(source.source_file, "lending")
    assert [p.name for p in config.named_files()] == ["library.py"]  # the module's file is in the data version
    runtime = make_runtime(part.tools, seed=0)
    assert runtime.execute(Call(name="add_book", arguments={"title": "Emma", "author": "Jane Austen"}))["book_id"] == "BK-1002"
