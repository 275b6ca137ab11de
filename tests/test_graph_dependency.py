"""Candidate sampling, the schema judge, the pre-filter and the two dependency tasks."""

import json

import pytest

from magnet_lib.graph.dependency import (
    CheckNestedTask,
    JudgeDependenciesTask,
    JudgeItem,
    NestedItem,
    NestedSource,
    ProfileCache,
    judge_category,
    judge_pair,
    prefilter_keep,
    profile,
    sample_candidates,
)
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.llm.task import ParseError
from magnet_lib.models import Tool
from magnet_lib.pool.envs.navigation import NavigationEnv


def _tool(name, params=None, required=None, response=None, tool_class="c", category="cat", description="A tool."):
    return Tool(
        name=name,
        category=category,
        tool_class=tool_class,
        description=description,
        parameters={"type": "object", "properties": params or {}, "required": required or []},
        response=response or {},
        source="test",
        executable=False,
    )


@pytest.fixture(scope="module")
def navigation_edges():
    edges, stats = judge_category(NavigationEnv.tools(), TaskRunner(), seed=0)
    return {(e.src, e.dst): e for e in edges}, stats


def test_offline_judge_finds_the_navigation_flows(navigation_edges):
    edges, stats = navigation_edges
    convert = edges[("get_distance", "convert_distance")]
    assert convert.kind == "partial_input" and convert.nested and convert.judge == "offline"
    assert "get_distance.unit -> convert_distance(from_unit)" in convert.evidence
    start = edges[("plan_route", "start_navigation")]
    assert start.kind == "full_input" and "route_id" in start.evidence
    for pair in [
        ("start_navigation", "get_eta"),
        ("start_navigation", "stop_navigation"),
        ("search_places", "get_distance"),
        ("plan_route", "get_route_details"),
    ]:
        assert pair in edges, pair
    # the converter's target unit is the user's choice: to_unit is never fed
    assert "to_unit" not in convert.evidence
    assert all(src != dst for src, dst in edges)
    assert stats.judge_items <= stats.functions  # at most one judge call per function at the default batch


def test_premise_and_echo():
    check = _tool(
        "check_file_exists",
        {"file_path": {"type": "string"}},
        ["file_path"],
        {
            "type": "object",
            "properties": {"file_path": {"type": "string"}, "exists": {"type": "boolean", "description": "True when the file exists."}},
        },
    )
    read = _tool("read_file", {"file_path": {"type": "string", "description": "Path of the file."}}, ["file_path"])
    verdict = judge_pair(profile(check), profile(read))
    # file_path is an echo of check's own argument: no input, but 'exists' gates the read
    assert verdict is not None and verdict.kind == "premise" and "exists" in verdict.evidence
    # an action's status is its outcome, not a gate
    delete = _tool(
        "delete_file",
        {"file_path": {"type": "string"}},
        ["file_path"],
        {"type": "object", "properties": {"success": {"type": "boolean"}, "status": {"type": "string"}}},
    )
    assert judge_pair(profile(delete), profile(read)) is None


def test_array_items_ids_and_plurals():
    lister = _tool(
        "list_orders",
        response={
            "type": "object",
            "properties": {
                "orders": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"id": {"type": "string", "description": "Identifier of the order."}}},
                }
            },
        },
    )
    cancel = _tool("cancel_order", {"order_id": {"type": "string"}}, ["order_id"])
    verdict = judge_pair(profile(lister), profile(cancel))
    assert verdict.kind == "full_input" and "orders[].id" in verdict.evidence
    saved = _tool("list_saved", response={"type": "object", "properties": {"place_ids": {"type": "array", "items": {"type": "string"}}}})
    remove = _tool("remove_place", {"place_id": {"type": "string"}}, ["place_id"])
    assert judge_pair(profile(saved), profile(remove)).kind == "full_input"
    # types must agree: a number is no id
    count = _tool("count_orders", response={"type": "object", "properties": {"order_id": {"type": "integer"}}})
    assert judge_pair(profile(count), profile(cancel)) is None


def test_candidates_same_class_first_then_category_never_self():
    tools = [_tool(f"a{i}", tool_class="A") for i in range(5)] + [_tool(f"b{i}", tool_class="B") for i in range(40)]
    cands = sample_candidates(tools, 30, seed=1)
    assert set(cands["a0"][:4]) == {"a1", "a2", "a3", "a4"} and len(cands["a0"]) == 30
    assert all(name not in cands[name] for name in cands)
    assert sample_candidates(tools, 30, seed=1) == cands and sample_candidates(tools, 30, seed=2) != cands


def test_prefilter_is_looser_than_the_judge():
    tools = NavigationEnv.tools()
    profiles = ProfileCache()
    for dst in tools:
        for src in tools:
            if src.name != dst.name and judge_pair(profiles(src), profiles(dst)) is not None:
                assert prefilter_keep(profiles(src), profiles(dst)), (src.name, dst.name)


def test_judge_task_round_trip_and_errors():
    tools = {t.name: t for t in NavigationEnv.tools()}
    task = JudgeDependenciesTask()
    item = JudgeItem(target=tools["start_navigation"], candidates=[tools["plan_route"], tools["get_eta"]])
    offline = task.offline(item)
    assert [r.name for r in offline.related] == ["plan_route"]
    assert task.parse(task.answer_text(offline), item).related[0].kind == offline.related[0].kind
    messages = task.render(item)
    assert messages[0]["role"] == "system" and "plan_route" in messages[-1]["content"] and "route_id" in messages[-1]["content"]
    with pytest.raises(ParseError, match="not one of the candidates"):
        task.parse(json.dumps({"start_navigation": [{"name": "save_place", "kind": "premise", "evidence": "x"}]}), item)
    with pytest.raises(ParseError, match="kind"):
        task.parse(json.dumps({"start_navigation": [{"name": "plan_route", "kind": "input", "evidence": "x"}]}), item)
    with pytest.raises(ParseError, match="target"):
        task.parse(json.dumps({"plan_route": []}), item)
    assert task.parse('```json\n{"start_navigation": []}\n```', item).related == []


def test_check_nested_task_round_trip():
    tools = {t.name: t for t in NavigationEnv.tools()}
    task = CheckNestedTask()
    item = NestedItem(
        target=tools["convert_distance"],
        sources=[NestedSource(tool=tools["get_distance"], kind="partial_input", evidence="unit -> from_unit")],
    )
    out = task.offline(item)
    assert out.verdicts[0].nested and "unit" in out.verdicts[0].reason
    assert task.parse(task.answer_text(out), item) == out
    assert "get_distance" in task.render(item)[-1]["content"]
    with pytest.raises(ParseError, match="yes or no"):
        task.parse('{"get_distance": {"answer": "maybe", "reason": "r"}}', item)
    with pytest.raises(ParseError, match="missing"):
        task.parse("{}", item)


def test_llm_mode_through_the_local_server(tmp_path):
    """The same judging in LLM mode: LiteLLM over HTTP to the local test server, which answers
    with each task's answer_text(offline(item)); edges match and carry the model name."""
    from magnet_lib.settings import LLMSettings
    from magnet_lib.testing.server import TestServer

    tools = NavigationEnv.tools()
    offline, _ = judge_category(tools, TaskRunner(), seed=0)
    with TestServer() as server:
        runner = TaskRunner(LLMSettings(model="openai/judge", api_base=server.url, api_key="sk-test"), cache_dir=tmp_path)
        edges, stats = judge_category(tools, runner, seed=0)
        assert server.by_task.get("judge_dependencies") == stats.judge_items <= len(tools)
        assert server.by_task.get("check_nested") == stats.nested_items
    assert stats.judge_rejects == stats.nested_rejects == 0
    assert {(e.src, e.dst, e.kind, e.nested) for e in edges} == {(e.src, e.dst, e.kind, e.nested) for e in offline}
    assert all(e.judge == "openai/judge" for e in edges)
