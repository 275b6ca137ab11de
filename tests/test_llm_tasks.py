"""The tasks of the LLM layer: classify_tool and simulate_tool_output, offline and through HTTP."""

from __future__ import annotations

import pytest

from magnet_lib.llm import ParseError, TaskRunner
from magnet_lib.models import Tool
from magnet_lib.pool.classify import CLASSIFY_TOOL, ClassifyInput, class_from_name
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.pool.execution import schema_user_values
from magnet_lib.pool.simulate import (
    SIMULATE_TOOL_OUTPUT,
    PriorCall,
    SimulateInput,
    expected_schema,
)
from magnet_lib.settings import LLMSettings
from tests.llm_server import TEST_MODEL, llm_server, make_runner

CATEGORIES = ["travel", "weather", "stock_trading", "navigation"]


def _spec_only(tool: Tool) -> Tool:
    return tool.model_copy(update={"executable": False})


def classify_items() -> list[ClassifyInput]:
    items = []
    for category, env in sorted(builtin_environments().items()):
        tools = env.tools()
        classes = sorted({t.tool_class for t in tools})
        items += [ClassifyInput.for_tool(t, sorted(builtin_environments()), classes) for t in tools[:4]]
    items.append(ClassifyInput(name="get_uv_index", description="UV index forecast for a city", categories=CATEGORIES))
    return items


def simulate_items() -> list[SimulateInput]:
    items = []
    for env in builtin_environments().values():
        for tool in env.tools()[:3]:
            tool = _spec_only(tool)
            values = schema_user_values(tool)
            args = {k: values[k][0] for k in tool.required if k in values}
            first = SimulateInput(tool=tool, arguments=args, seed=1)
            out = SIMULATE_TOOL_OUTPUT.offline(first).output
            items += [
                first,
                SimulateInput(tool=tool, arguments=args, seed=1, history=[PriorCall(name=tool.name, arguments=args, output=out)]),
            ]
    return items


# --------------------------------------------------------------------------- classify_tool


def test_classify_offline_heuristics():
    item = ClassifyInput(
        name="book_flight", description="Book a seat", category="travel", categories=CATEGORIES, classes=["Flight booking", "Hotel booking"]
    )
    assert CLASSIFY_TOOL.offline(item).model_dump() == {"category": "travel", "tool_class": "Flight booking"}
    unfiled = ClassifyInput(name="getStockQuote", description="Latest price of a stock", categories=CATEGORIES)
    assert CLASSIFY_TOOL.offline(unfiled).model_dump() == {"category": "stock_trading", "tool_class": "Stock quote lookup"}
    assert class_from_name("convert_unit") == "Unit conversion"
    assert class_from_name("weather_alerts") == "Weather alerts tools"


def test_classify_parser_explains_what_is_wrong():
    item = ClassifyInput(name="f", description="d", category="travel", categories=CATEGORIES)
    assert (
        CLASSIFY_TOOL.parse('```json\n{"category": "travel", "tool_class": " Flight booking ", "reason": "x"}\n```', item).tool_class
        == "Flight booking"
    )
    with pytest.raises(ParseError, match="category 'cooking' is not one of the existing categories"):
        CLASSIFY_TOOL.parse('{"category": "cooking", "tool_class": "Recipes"}', item)
    with pytest.raises(ParseError, match="tool_class: Field required"):
        CLASSIFY_TOOL.parse('{"category": "travel"}', item)
    with pytest.raises(ParseError, match="short name"):
        CLASSIFY_TOOL.parse('{"category": "travel", "tool_class": "a class name that goes on and on and on"}', item)


def test_classify_round_trips_for_every_builtin_tool():
    for item in classify_items():
        output = CLASSIFY_TOOL.offline(item)
        assert CLASSIFY_TOOL.parse(CLASSIFY_TOOL.answer_text(output), item) == output


# --------------------------------------------------------------------------- simulate_tool_output


def test_simulated_outputs_follow_the_schema_and_the_episode():
    tool = _spec_only(builtin_environments()["travel"].tools()[0])
    values = schema_user_values(tool)
    args = {k: values[k][0] for k in tool.required if k in values}
    first = SIMULATE_TOOL_OUTPUT.offline(SimulateInput(tool=tool, arguments=args, seed=3))
    assert first == SIMULATE_TOOL_OUTPUT.offline(SimulateInput(tool=tool, arguments=args, seed=3))  # deterministic
    assert not first.is_error
    bad = SIMULATE_TOOL_OUTPUT.offline(SimulateInput(tool=tool, arguments={"nope": 1}, seed=3))
    assert bad.is_error  # invalid arguments: an error output, not an exception


def test_simulate_parser_validates_against_the_response_schema():
    tool = Tool(
        name="get_quote", category="finance", tool_class="Quotes", description="Price of a symbol",
        parameters={"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
        response={"type": "object", "properties": {"symbol": {"type": "string"}, "price": {"type": "number"}}, "required": ["symbol", "price"]},
        source="test", executable=False,
    )  # fmt: skip
    item = SimulateInput(tool=tool, arguments={"symbol": "ACME"})
    assert SIMULATE_TOOL_OUTPUT.parse('{"symbol": "ACME", "price": 12.5}', item).output["price"] == 12.5
    assert SIMULATE_TOOL_OUTPUT.parse('{"error": {"code": "not_found", "message": "no such symbol"}}', item).is_error
    with pytest.raises(ParseError, match="price: 'cheap' is not of type 'number'"):
        SIMULATE_TOOL_OUTPUT.parse('{"symbol": "ACME", "price": "cheap"}', item)
    with pytest.raises(ParseError, match="'price' is a required property"):
        SIMULATE_TOOL_OUTPUT.parse('{"symbol": "ACME"}', item)
    scalar = tool.model_copy(update={"response": {"type": "number"}})
    assert expected_schema(scalar)["required"] == ["result"]
    assert SIMULATE_TOOL_OUTPUT.parse('{"result": 3}', SimulateInput(tool=scalar)).output == {"result": 3}


def test_simulate_round_trips_for_every_builtin_tool():
    for env in builtin_environments().values():
        for tool in env.tools():
            tool = _spec_only(tool)
            values = schema_user_values(tool)
            args = {k: values[k][0] for k in tool.properties if k in values}
            item = SimulateInput(tool=tool, arguments=args, seed=5)
            output = SIMULATE_TOOL_OUTPUT.offline(item)
            assert SIMULATE_TOOL_OUTPUT.parse(SIMULATE_TOOL_OUTPUT.answer_text(output), item) == output, tool.name


# --------------------------------------------------------------------------- through HTTP


@pytest.mark.parametrize(("task", "items"), [(CLASSIFY_TOOL, classify_items), (SIMULATE_TOOL_OUTPUT, simulate_items)])
def test_task_through_http_matches_offline(llm_server, tmp_path, task, items):
    items = items()
    llm_server.script("invalid_answer", "server_error", task=task.name)
    runner = make_runner(llm_server, tmp_path / "cache")
    results = runner.run(task, items)
    offline = TaskRunner(LLMSettings(model=None)).run(task, items)
    assert [r.value for r in results] == [r.value for r in offline]
    assert all(r.generator == TEST_MODEL for r in results)
    assert llm_server.by_task[task.name] == len(items) + 2
    stats = runner.stats[task.name]
    assert (stats.reasks, stats.retries, stats.rejects) == (1, 1, 0)
