"""Importing user tool specs under stress: every bad file, entry and path is a reject naming
file, tool and field; nothing raises; the good tools of the same file and of every other
file still load (issue 15)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from magnet_lib.pool.function_pool import discover_categories, layout_rejects, load_category, load_pool, load_spec_file
from magnet_lib.settings import PoolSettings, load_settings


def _fn(name, **extra):
    fn = {
        "name": name,
        "description": f"Does {name}.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City."}}, "required": ["city"]},
    }
    fn.update(extra)
    return {"type": "function", "function": fn}


def _nested(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _load(tmp_path, name: str, content: str | bytes, limits: PoolSettings | None = None):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path, load_spec_file(path, "cat", limits)


# ------------------------------------------------------------------------- each case of the stress pass

BAD_FILES = [
    # (file name, content, field of the file's one reject, words in its message)
    ("deep_array.json", "[" * 100_000 + "]" * 100_000, "json", "nested 100000 levels deep"),
    ("deep_line.jsonl", "[" * 50_000 + "]" * 50_000, "json", "line 1"),
    ("empty_list.json", "[]", "file", "holds no tool"),
    ("blank.json", " \n", "file", "is empty"),
    ("latin1.json", "[\xe9]".encode("latin-1"), "file", "not UTF-8"),
    ("scalar.json", "42", "json", "expected a list of tools"),
    ("bad_wrapper.json", json.dumps({"tools": "get_tide"}), "tools", "expected a list of tools"),
]


@pytest.mark.parametrize("name,content,field,words", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_one_clear_reject(tmp_path, name, content, field, words):
    path, part = _load(tmp_path, name, content)
    assert not part.tools
    assert len(part.rejects) == 1, [str(r) for r in part.rejects]
    reject = part.rejects[0]
    assert (reject.file, reject.tool, reject.field) == (str(path), "<file>", field)
    assert words in reject.message


def test_truncated_pretty_json_is_one_reject_with_its_position(tmp_path):
    text = json.dumps([_fn("get_tide"), _fn("get_wind"), _fn("get_swell")], indent=2)
    path, part = _load(tmp_path, "cut.json", text[: len(text) // 2])
    assert not part.tools and len(part.rejects) == 1
    assert part.rejects[0].field == "json" and "malformed JSON" in part.rejects[0].message and "line" in part.rejects[0].message


def test_bom_and_tools_wrapper_load(tmp_path):
    _, bom = _load(tmp_path, "bom.json", b"\xef\xbb\xbf" + json.dumps([_fn("get_tide")]).encode())
    assert [t.name for t in bom.tools] == ["get_tide"] and not bom.rejects
    _, wrapped = _load(tmp_path, "wrapped.json", json.dumps({"tools": [_fn("get_wind"), _fn("get_swell")]}))
    assert [t.name for t in wrapped.tools] == ["get_wind", "get_swell"] and not wrapped.rejects
    _, bom_lines = _load(tmp_path, "bom.jsonl", b"\xef\xbb\xbf" + json.dumps(_fn("get_rain")["function"]).encode())
    assert [t.name for t in bom_lines.tools] == ["get_rain"]


BAD_TOOLS = [
    # (entry, field of the reject, words in the message)
    (_fn("tool_a", description=12345), "description", "must be a string, got int"),
    (_fn("tool_b\n"), "name", "must start with a letter"),
    (_fn("tool_c", parameters={"type": "object", "properties": {"": {"type": "string"}}}), "parameters.properties", "''"),
    (_fn("tool_d", parameters={"type": "object", "properties": {"x y": {"type": "string"}}}), "parameters.properties", "'x y'"),
    (
        _fn("tool_e", parameters={"type": "object", "properties": {"a'b) DETACH DELETE": {"type": "string"}}}),
        "parameters.properties",
        "DETACH DELETE",
    ),
    (
        _fn("tool_f", parameters={"type": "object", "properties": {"x": {"type": "number", "default": float("nan")}}}),
        "parameters.properties.x.default",
        "NaN is not a finite number",
    ),
    (
        _fn("tool_g", response={"type": "object", "properties": {"x": {"type": "number", "maximum": float("inf")}}}),
        "response.properties.x.maximum",
        "Infinity",
    ),
    (_fn("tool_h", parameters=_nested(100)), "parameters", "pool.max_depth (24)"),
    (_fn("tool_i", description="word " * 300_000), "description", "pool.max_description_chars"),
    (
        _fn("tool_j", parameters={"type": "object", "properties": {"x": {"type": "string", "description": "y" * 5000}}}),
        "parameters.properties.x.description",
        "pool.max_description_chars",
    ),
    (_fn(12), "name", "must be a string, got int"),
]


@pytest.mark.parametrize("entry,field,words", BAD_TOOLS, ids=[str(e["function"]["name"]).strip() for e, _, _ in BAD_TOOLS])
def test_a_bad_tool_is_rejected_by_field_and_its_neighbours_load(tmp_path, entry, field, words):
    path, part = _load(tmp_path, "mixed.json", json.dumps([_fn("good_one"), entry, _fn("good_two")]))  # NaN/Infinity as Python writes them
    assert [t.name for t in part.tools] == ["good_one", "good_two"]
    assert len(part.rejects) == 1, [str(r) for r in part.rejects]
    reject = part.rejects[0]
    assert (reject.file, reject.field) == (str(path), field)
    assert reject.tool == (entry["function"]["name"] if isinstance(entry["function"]["name"], str) else "<index 1>")
    assert words in reject.message


def test_a_float_too_big_for_a_double_is_rejected(tmp_path):
    text = json.dumps([_fn("ok_tool"), _fn("huge", parameters={"type": "object", "properties": {"x": {"type": "number", "maximum": 7}}})])
    _, part = _load(tmp_path, "huge.json", text.replace('"maximum": 7', '"maximum": 1e999'))
    assert [t.name for t in part.tools] == ["ok_tool"]
    assert part.rejects[0].field == "parameters.properties.x.maximum" and "1e999 is not a finite number" in part.rejects[0].message


def test_property_names_are_checked_where_they_are_names(tmp_path):
    odd = {
        "type": "object",
        "properties": {
            "properties": {"type": "object", "properties": {"$ref": {"type": "string"}}, "x-note": "kept"},
            "choice": {"anyOf": [{"type": "object", "properties": {"bad name": {"type": "string"}}}, {"type": "string"}]},
            "tags": {"type": "array", "items": {"type": "object", "properties": {"ok_name": {"type": "string"}}}},
        },
    }
    _, part = _load(tmp_path, "odd.json", json.dumps([_fn("odd_tool", parameters=odd)]))
    assert sorted((r.field, r.message.split(" must")[0]) for r in part.rejects) == [
        ("parameters.properties.choice.anyOf.0.properties", "property name 'bad name'"),
        ("parameters.properties.properties.properties", "property name '$ref'"),
    ]


def test_limits_are_settings(tmp_path):
    limits = PoolSettings(max_description_chars=10, max_depth=4, max_file_bytes=10_000)
    _, part = _load(tmp_path, "a.json", json.dumps([_fn("short", description="Short."), _fn("long_one")]), limits)
    assert [t.name for t in part.tools] == ["short"] and "(10)" in part.rejects[0].message
    _, deep = _load(tmp_path, "b.json", json.dumps([_fn("deep_one", description="Deep.", parameters=_nested(2))]), limits)
    assert deep.rejects[0].field == "parameters" and "pool.max_depth (4)" in deep.rejects[0].message
    _, big = _load(tmp_path, "c.json", json.dumps([_fn(f"t{i}") for i in range(100)]), limits)
    assert not big.tools and big.rejects[0].field == "file" and "pool.max_file_bytes (10,000)" in big.rejects[0].message


def _layout(root: Path) -> dict[str, Path]:
    """A tools folder holding one of each thing the stress pass found ignored."""
    (root / "marine").mkdir(parents=True)
    (root / "marine" / "tides.json").write_text(json.dumps([_fn("get_tide")]))
    (root / "marine" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "marine" / "notes.yaml").write_text("tools: []\n")
    (root / "marine" / "old").mkdir()
    (root / "marine" / "loop").symlink_to(root / "marine" / "loop")
    (root / "empty").mkdir()
    (root / "yaml_only").mkdir()
    (root / "yaml_only" / "tools.yml").write_text("- name: x\n")
    (root / "loose.json").write_text(json.dumps([_fn("get_loose")]))
    (root / "with space").mkdir()
    (root / "with space" / "a.json").write_text(json.dumps([_fn("get_space")]))
    (root / "ünicode").mkdir()
    (root / "ünicode" / "a.json").write_text(json.dumps([_fn("get_unicode")]))
    (root / "a..b").mkdir()
    (root / "a..b" / "a.json").write_text(json.dumps([_fn("get_dots")]))
    (root / "self").symlink_to(root)
    (root / "ping").symlink_to(root / "pong")
    (root / "pong").symlink_to(root / "ping")
    return {
        "deep": root / "marine" / "deep.json",
        "yaml": root / "marine" / "notes.yaml",
        "subfolder": root / "marine" / "old",
        "file loop": root / "marine" / "loop",
        "empty folder": root / "empty",
        "yaml only": root / "yaml_only" / "tools.yml",
        "loose": root / "loose.json",
        "space": root / "with space",
        "unicode": root / "ünicode",
        "dots": root / "a..b",
        "self link": root / "self",
        "link loop": root / "ping",
    }


def test_every_unused_path_is_named_with_a_reason_and_one_bad_file_costs_only_its_tools(tmp_path):
    paths = _layout(tmp_path / "tools")
    settings = load_settings(home=tmp_path / "home", tools_dir=tmp_path / "tools")
    sources = discover_categories(settings)
    assert "marine" in sources and not {"empty", "yaml_only", "with space", "ünicode", "a..b", "self", "ping"} & set(sources)
    pool = load_pool(settings)
    named = {r.file: r for r in pool.rejects}
    for what, path in paths.items():
        assert str(path) in named, f"{what} ({path}) is not named in the rejects"
        assert named[str(path)].message and named[str(path)].field
    # the built-ins and the good file of the same category are all there
    assert "get_tide" in {t.name for t in load_category(settings, "marine").tools}
    builtin = load_settings(home=tmp_path / "home2")
    assert len([t for t in pool.tools if t.executable]) == len(load_pool(builtin).tools)


def test_magnet_pool_lists_unused_paths_and_counts_words(tmp_path):
    from magnet_assets.cli import app, shorten

    paths = _layout(tmp_path / "tools")
    runner = CliRunner()
    args = ["pool", "--home", str(tmp_path / "home"), "--tools-dir", str(tmp_path / "tools")]
    listed = runner.invoke(app, [*args, "--rejects", "--json"])
    assert listed.exit_code == 0, listed.output
    files = {r["file"] for r in json.loads(listed.output)}
    assert {str(p) for p in paths.values()} <= files
    table = runner.invoke(app, [*args, "--category", "marine"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "1 tool in 1 category" in table.output, table.output
    unknown = runner.invoke(app, [*args, "--category", "nope"])
    assert unknown.exit_code == 1 and "unknown category 'nope'" in unknown.output
    assert shorten("Find the cheapest flights between two airports on a date", 30) == "Find the cheapest flights…"
    assert shorten("short   text", 30) == "short text"
    assert len(shorten("x" * 100, 30)) == 30


# ------------------------------------------------------------------------- property-based fuzz

NAME = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
NO_NAME_KEYS = st.text(max_size=8).filter(lambda k: k not in ("name", "function", "tools", "functions"))
JSON_VALUE = st.recursive(
    JSON_LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NO_NAME_KEYS, inner, max_size=4), max_leaves=12
)
SCHEMA_LEAF = st.fixed_dictionaries(
    {"type": st.sampled_from(["string", "integer", "number", "boolean"])}, optional={"description": st.text(max_size=30)}
)
SCHEMA = st.recursive(
    SCHEMA_LEAF,
    lambda inner: st.builds(lambda items: {"type": "array", "items": items}, inner)
    | st.builds(lambda props: {"type": "object", "properties": props}, st.dictionaries(NAME, inner, max_size=3)),
    max_leaves=6,
)
LIMITS = PoolSettings(max_depth=24, max_description_chars=200, max_file_bytes=200_000)


@st.composite
def good_tool(draw, name: str) -> dict:
    props = draw(st.dictionaries(NAME, SCHEMA, max_size=4))
    required = draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
    fn = {
        "name": name,
        "description": draw(st.text(min_size=1, max_size=80).filter(str.strip)),
        "parameters": {"type": "object", "properties": props, "required": required},
    }
    if draw(st.booleans()):
        fn["response"] = {"type": "object", "properties": draw(st.dictionaries(NAME, SCHEMA, max_size=3))}
    if draw(st.booleans()):
        fn["parameters"]["type"] = "dict"  # BFCL spelling
    return {"type": "function", "function": fn} if draw(st.booleans()) else fn


def _mutations(fn: dict) -> list[dict]:
    """Ways to break a good function entry; each must reject it."""
    fn = json.loads(json.dumps(fn.get("function", fn)))
    params = fn["parameters"]
    return [
        {k: v for k, v in fn.items() if k != "name"},
        {**fn, "name": fn["name"] + "\n"},
        {**fn, "name": "9" + fn["name"]},
        {**fn, "description": 12345},
        {**fn, "description": " "},
        {**fn, "description": "x" * 201},
        {**fn, "parameters": {**params, "properties": {**params["properties"], "x y": {"type": "string"}}}},
        {**fn, "parameters": {**params, "properties": {**params["properties"], "when": {"type": "datetime"}}}},
        {**fn, "parameters": {**params, "required": [*params["required"], "not_a_param_"]}},
        {**fn, "parameters": {**params, "properties": {**params["properties"], "deep": _nested(12)}}},
        {**fn, "parameters": {**params, "properties": {**params["properties"], "n": {"type": "number", "default": float("nan")}}}},
        {**fn, "parameters": "city"},
    ]


@st.composite
def spec_file(draw, names: list[str]) -> tuple[str, str | bytes, list[str], int, bool]:
    """(suffix, content, good tool names it must yield, bad entries in it, whether it is broken as a whole)."""
    goods = [draw(good_tool(n)) for n in names]
    bads = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            bads.append(draw(JSON_VALUE))
        else:
            base = draw(good_tool("broken_" + draw(NAME)))
            bads.append(draw(st.sampled_from(_mutations(base))))
    entries = draw(st.permutations(goods + bads))
    kind = draw(st.sampled_from(["list", "pretty", "bom", "wrapper", "lines", "truncated", "garbage"]))
    if kind == "lines":
        return ".jsonl", "\n".join(json.dumps(e) for e in entries), names, len(bads), False
    if kind == "garbage":
        return draw(st.sampled_from([".json", ".jsonl"])), draw(st.binary(max_size=200)), [], 0, True
    document = {"tools": entries} if kind == "wrapper" else entries
    text = json.dumps(document, indent=2 if kind in ("pretty", "truncated") else None)
    if kind == "truncated":
        return ".json", text[: draw(st.integers(0, len(text) - 1))], [], 0, True
    if kind == "bom":
        return ".json", b"\xef\xbb\xbf" + text.encode(), names, len(bads), False
    return ".json", text, names, len(bads), False


@st.composite
def tools_layout(draw):
    counter = iter(range(10_000))
    categories = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True), min_size=1, max_size=3, unique=True))
    files = {}
    for cat in categories:
        for i in range(draw(st.integers(1, 3))):
            names = [f"t{next(counter)}_{draw(NAME)}" for _ in range(draw(st.integers(0, 3)))]
            suffix, content, good, bad, broken = draw(spec_file(names))
            files[f"{cat}/f{i}{suffix}"] = (content, good, bad, broken)
    extras = draw(
        st.lists(
            st.sampled_from(["loose.json", "bad name/a.json", "empty/", "notes/x.yaml", "ünï/a.json", f"{categories[0]}/x.yml"]),
            unique=True,
        )
    )
    return files, extras


def _check_layout(files, extras) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tools"
        for rel, (content, *_rest) in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        for rel in extras:
            path = root / rel
            if rel.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("[]")
        settings = load_settings(home=Path(tmp) / "home", tools_dir=root, builtin_tools=False, pool=LIMITS)
        pool = load_pool(settings)  # must not raise, whatever the files hold
        loaded = {t.name: t for t in pool.tools}
        for rel, (_, good, bad, broken) in files.items():
            path = str(root / rel)
            mine = [r for r in pool.rejects if r.file == path]
            assert {n for n, t in loaded.items() if t.source == path} == set(good), (rel, [str(r) for r in mine])
            assert len(mine) >= bad, rel
            if broken and not good:
                assert mine or any(t.source == path for t in pool.tools), rel
        for r in pool.rejects:
            assert r.file and r.tool and r.field and r.message, r
        for rel in extras:
            assert any(
                r.file == str((root / rel).parent if rel.startswith(("bad name", "ünï")) else root / rel.rstrip("/")) for r in pool.rejects
            ), rel


FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@hyp_settings(max_examples=15, **FUZZ)
@given(tools_layout())
def test_fuzz_the_importer(layout):
    _check_layout(*layout)


@pytest.mark.slow
@hyp_settings(max_examples=500, **FUZZ)
@given(tools_layout())
def test_fuzz_the_importer_long(layout):
    _check_layout(*layout)


@hyp_settings(max_examples=60, **FUZZ)
@given(st.binary(max_size=300) | JSON_VALUE.map(lambda v: json.dumps(v).encode()))
def test_fuzz_one_file_of_anything(content):
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".json", ".jsonl"):
            path = Path(tmp) / f"x{suffix}"
            path.write_bytes(content)
            part = load_spec_file(path, "cat", LIMITS)
            assert part.tools or part.rejects
            assert all(r.file == str(path) and r.tool and r.field and r.message for r in part.rejects)


def test_an_unused_file_changes_the_category_version(tmp_path):
    (tmp_path / "tools" / "marine").mkdir(parents=True)
    (tmp_path / "tools" / "marine" / "a.json").write_text(json.dumps([_fn("get_tide")]))
    settings = load_settings(home=tmp_path / "home", tools_dir=tmp_path / "tools")
    before = discover_categories(settings)["marine"].version()
    (tmp_path / "tools" / "marine" / "more.yaml").write_text("- name: get_wind\n")
    assert discover_categories(settings)["marine"].version() != before
    assert any(r.file.endswith("more.yaml") and "YAML" in r.message for r in load_category(settings, "marine").rejects)


def test_layout_rejects_without_a_tools_dir(tmp_path):
    assert layout_rejects(load_settings(home=tmp_path)) == []
    missing = layout_rejects(load_settings(home=tmp_path, tools_dir=tmp_path / "nope"))
    assert len(missing) == 1 and "does not exist" in missing[0].message
    assert os.path.basename(missing[0].file) == "nope"
