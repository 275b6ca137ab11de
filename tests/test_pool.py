"""Importing tool specs: OpenAI and BFCL formats, validation errors, simulated execution."""

from __future__ import annotations

import json

import jsonschema
import pytest

from magnet_lib.models import Call
from magnet_lib.pool.execution import EpisodeRuntime, SimulatedExecutor
from magnet_lib.pool.function_pool import (
    discover_categories,
    load_category,
    load_pool,
    load_spec_file,
    validate_arguments,
)
from magnet_lib.settings import load_settings


def _fn(name, **extra):
    fn = {
        "name": name,
        "description": f"Does {name}.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City."}}, "required": ["city"]},
    }
    fn.update(extra)
    return {"type": "function", "function": fn}


def test_openai_file_loads(tmp_path):
    path = tmp_path / "weather.json"
    path.write_text(json.dumps([_fn("get_tide"), _fn("get_wind", tool_class="Wind")]))
    part = load_spec_file(path, "marine")
    assert [t.name for t in part.tools] == ["get_tide", "get_wind"] and not part.rejects
    assert part.tools[0].tool_class == "marine" and part.tools[1].tool_class == "Wind"
    assert all(not t.executable and t.source == str(path) for t in part.tools)


def test_bfcl_jsonl_file_loads_with_type_names_converted(tmp_path):
    lines = [
        {
            "name": "calc_area",
            "description": "Area of a circle.",
            "parameters": {
                "type": "dict",
                "properties": {
                    "radius": {"type": "float", "description": "Radius."},
                    "dims": {"type": "tuple", "items": {"type": "integer"}, "description": "Dims."},
                },
                "required": ["radius"],
            },
        },
        {
            "name": "get_radius",
            "description": "Radius of an object.",
            "parameters": {"type": "dict", "properties": {"obj": {"type": "string", "description": "Object."}}, "required": ["obj"]},
            "response": {"type": "dict", "properties": {"radius": {"type": "float"}}},
        },
    ]
    path = tmp_path / "geometry.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    part = load_spec_file(path, "math")
    assert not part.rejects, [str(r) for r in part.rejects]
    area = part.tools[0]
    assert area.parameters["type"] == "object"
    assert area.properties["radius"]["type"] == "number" and area.properties["dims"]["type"] == "array"
    assert part.tools[1].response["properties"]["radius"]["type"] == "number"


BAD_CASES = [
    # (entry, tool named in the reject, field named in the reject, words in the message)
    (_fn("no_desc", description=""), "no_desc", "description", "missing or empty"),
    ({"type": "function", "function": {"description": "x", "parameters": {"type": "object"}}}, "<index 1>", "name", "missing"),
    (
        _fn("bad_required", parameters={"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]}),
        "bad_required",
        "parameters.required",
        "'b'",
    ),
    (
        _fn("bad_type", parameters={"type": "object", "properties": {"date": {"type": "datetime"}}}),
        "bad_type",
        "parameters.properties.date.type",
        "datetime",
    ),
    (
        _fn("bad_schema", parameters={"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}}),
        "bad_schema",
        "parameters.properties.n.minimum",
        "not valid JSON Schema",
    ),
    (_fn("not_object", parameters={"type": "array"}), "not_object", "parameters.type", "must be 'object'"),
]


@pytest.mark.parametrize("entry,tool,field,words", BAD_CASES, ids=[c[1] for c in BAD_CASES])
def test_each_malformed_spec_names_file_tool_field_and_the_rest_loads(tmp_path, entry, tool, field, words):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([_fn("good_one"), entry, _fn("good_two")]))
    part = load_spec_file(path, "cat")
    assert [t.name for t in part.tools] == ["good_one", "good_two"]
    assert len(part.rejects) >= 1
    reject = part.rejects[0]
    assert (reject.file, reject.tool, reject.field) == (str(path), tool, field)
    assert words in reject.message
    assert str(path) in str(reject) and tool in str(reject)


def test_malformed_json_file_is_a_reject(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"type": "function", "function": {"name": "x",')
    part = load_spec_file(path, "cat")
    assert not part.tools
    assert part.rejects[0].field == "json" and "malformed JSON" in part.rejects[0].message


def test_jsonl_bad_line_keeps_the_good_lines(tmp_path):
    good = {"name": "ok_fn", "description": "Fine.", "parameters": {"type": "dict", "properties": {}}}
    path = tmp_path / "funcs.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({**good, "name": "ok_two"}))
    part = load_spec_file(path, "cat")
    assert [t.name for t in part.tools] == ["ok_fn", "ok_two"]
    assert part.rejects[0].field == "json" and "line 2" in part.rejects[0].message


def test_duplicates_in_file_and_against_builtins(tmp_path, monkeypatch):
    tools_dir = tmp_path / "tools"
    (tools_dir / "marine").mkdir(parents=True)
    (tools_dir / "marine" / "a.json").write_text(json.dumps([_fn("get_tide"), _fn("get_tide"), _fn("get_distance")]))
    settings = load_settings(home=tmp_path / "home", tools_dir=tools_dir)
    part = load_category(settings, "marine")
    assert [t.name for t in part.tools] == ["get_tide"]
    messages = {(r.tool, r.message) for r in part.rejects}
    assert ("get_tide", "duplicate tool name in the same file") in messages
    assert any(tool == "get_distance" and "builtin:navigation" in m for tool, m in messages)
    # the built-in keeps its tool
    assert "get_distance" in {t.name for t in load_category(settings, "navigation").tools}


def test_builtin_pool_is_big_enough(tmp_path):
    settings = load_settings(home=tmp_path)
    pool = load_pool(settings)
    assert not pool.rejects
    cats = discover_categories(settings)
    assert all(src.environment is not None for src in cats.values())


def test_category_version_changes_with_the_spec(tmp_path):
    tools_dir = tmp_path / "tools"
    (tools_dir / "marine").mkdir(parents=True)
    spec = tools_dir / "marine" / "a.json"
    spec.write_text(json.dumps([_fn("get_tide")]))
    settings = load_settings(home=tmp_path / "home", tools_dir=tools_dir)
    before = discover_categories(settings)["marine"].version()
    assert before == discover_categories(settings)["marine"].version()
    spec.write_text(json.dumps([_fn("get_tide", description="Tide height.")]))
    assert discover_categories(settings)["marine"].version() != before


def test_simulated_outputs_follow_schema_and_stay_consistent(tmp_path):
    path = tmp_path / "shop.json"
    path.write_text(
        json.dumps(
            [
                _fn(
                    "find_order",
                    parameters={
                        "type": "object",
                        "properties": {"customer": {"type": "string", "description": "Who."}},
                        "required": ["customer"],
                    },
                    response={
                        "type": "object",
                        "properties": {
                            "order_id": {"type": "string"},
                            "total": {"type": "number"},
                            "paid": {"type": "boolean"},
                            "status": {"type": "string", "enum": ["open", "shipped"]},
                        },
                    },
                ),
                _fn(
                    "ship_order",
                    parameters={
                        "type": "object",
                        "properties": {"order_id": {"type": "string", "description": "Order."}},
                        "required": ["order_id"],
                    },
                    response={"type": "object", "properties": {"order_id": {"type": "string"}, "tracking_number": {"type": "string"}}},
                ),
            ]
        )
    )
    tools = load_spec_file(path, "shop").tools
    a, b = SimulatedExecutor(tools, seed=5), SimulatedExecutor(tools, seed=5)
    first = a.call("find_order", {"customer": "Ada"})
    assert first == b.call("find_order", {"customer": "Ada"})
    jsonschema.validate(first, tools[0].response)
    shipped = a.call("ship_order", {"order_id": first["order_id"]})
    assert shipped["order_id"] == first["order_id"]  # the id passed in comes back
    assert a.call("ship_order", {})["error"]["code"] == "invalid_arguments"
    assert a.call("ship_order", {"order_id": "x", "extra": 1})["error"]["code"] == "invalid_arguments"


def test_episode_runtime_mixes_builtin_and_simulated(tmp_path):
    from magnet_lib.pool.envs.navigation import NavigationEnv

    path = tmp_path / "x.json"
    path.write_text(json.dumps([_fn("get_tide")]))
    tools = NavigationEnv.tools() + load_spec_file(path, "marine").tools
    rt = EpisodeRuntime(tools, seed=1)
    assert "navigation" in rt.initial_state
    places = rt.execute(Call(name="search_places", arguments={"query": "park"}))["places"]
    assert places
    assert "result" in rt.execute(Call(name="get_tide", arguments={"city": "Oslo"}))
    assert rt.execute(Call(name="not_offered"))["error"]["code"] == "unknown_function"
    assert rt.user_values()["city"]


def test_validate_arguments_reports_each_problem(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps([_fn("get_tide")]))
    tool = load_spec_file(path, "m").tools[0]
    assert validate_arguments(tool, {"city": "Oslo"}) == []
    problems = validate_arguments(tool, {"town": 3})
    assert any("unknown parameter" in p for p in problems) and any("'city' is a required property" in p for p in problems)
