"""Structured outputs: every task's answer schema sent as ``response_format`` (when the setting
or LiteLLM's capability table says the server enforces schemas), and every schema accepting
the answers the task's parser reads. Through LiteLLM and real HTTP to the local test server,
which checks each answer against the schema it was sent (``schema_violations``)."""

from __future__ import annotations

import pytest

from magnet_lib.distillation.single_turn import make_single_turn
from magnet_lib.distillation.teacher import distill
from magnet_lib.graph.dependency import judge_category
from magnet_lib.llm import structured
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.pool.classify import CLASSIFY_TOOL
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.pool.simulate import SIMULATE_TOOL_OUTPUT
from magnet_lib.settings import LLMSettings, load_settings
from magnet_lib.testing.server import TestServer
from magnet_lib.training.error_judge import JudgeErrorsTask, judge_turn
from magnet_lib.training.hints import Reference, judge_item
from magnet_lib.translation.episodes import translate
from tests.test_llm_tasks import classify_items, simulate_items
from tests.training_support import navigation_episode
from tests.translation_fixtures import navigation_fsps

TOOLS = builtin_environments()["navigation"].tools()
#: tasks whose answer is JSON (a schema is sent) and tasks whose answer is text (none is)
SCHEMA_TASKS = {"judge_dependencies", "check_nested", "back_translate", "classify_tool", "simulate_tool_output", "judge_errors"}
TEXT_TASKS = {"forth_translate", "teacher_turn"}


def _runner(server: TestServer, mode: str, cache_dir=None) -> TaskRunner:
    settings = LLMSettings(
        model="hosted_vllm/magnet-test", api_base=server.url, api_key="sk-test", timeout_s=5.0, concurrency=16, structured_outputs=mode
    )
    return TaskRunner(settings, cache_dir=cache_dir, backoff_base_s=0.02, backoff_max_s=0.2)


def _everything(runner: TaskRunner) -> dict:
    """Every LLM task of the method on navigation items (the stages' own code)."""
    settings = load_settings()
    edges, _ = judge_category(TOOLS, runner, seed=0)
    episodes = translate(navigation_fsps(), TOOLS, settings, runner)
    trajectories = [r.trajectory for r in distill(episodes, TOOLS, runner)]
    singles, _ = make_single_turn(TOOLS, {"single": 2, "parallel": 1, "irrelevance_no_fit": 1}, settings, runner)
    episode, traj = navigation_episode()
    ref = Reference(traj, episode)
    verdicts = runner.run(JudgeErrorsTask(), [judge_item(ref, t.index, t.responses) for t in ref.turns])
    classes = runner.run(CLASSIFY_TOOL, classify_items()[:12])
    outputs = runner.run(SIMULATE_TOOL_OUTPUT, simulate_items()[:12])
    return {
        "edges": sorted((e.src, e.dst, e.kind, e.nested) for e in edges),
        "episodes": [e.model_dump(exclude={"generator"}) for e in episodes],
        "trajectories": [t.model_dump(exclude={"generator"}) for t in trajectories + singles],
        "verdicts": [r.value for r in verdicts],
        "classes": [r.value for r in classes],
        "outputs": [r.value for r in outputs],
        "expected_verdicts": [judge_turn(judge_item(ref, t.index, t.responses)) for t in ref.turns],
    }


def test_modes_and_request_shapes():
    assert structured.mode_for("auto", "openai/gpt-4o-mini") == "json_schema"  # LiteLLM knows it supports schemas
    assert structured.mode_for("auto", "hosted_vllm/magnet-test") == "off"  # unknown server: nothing is sent
    assert structured.mode_for("json_object", "openai/anything") == "json_object"
    with pytest.raises(ValueError, match="structured_outputs must be one of"):
        structured.mode_for("grammar", "openai/x")
    schema = {"type": "object"}
    assert structured.response_format("json_schema", "t", schema) == {
        "type": "json_schema",
        "json_schema": {"name": "t", "schema": schema, "strict": False},
    }
    assert structured.response_format("json_object", "t", schema) == {"type": "json_object", "schema": schema}
    assert structured.response_format("json_schema", "t", None) is None


def test_judge_dependencies_schema_lists_the_items_candidates():
    from magnet_lib.graph.dependency import JudgeDependenciesTask, JudgeItem

    task = JudgeDependenciesTask()
    item = JudgeItem(target=TOOLS[1], candidates=[TOOLS[0], TOOLS[2]])
    schema = task.response_schema(item)
    entry = schema["properties"][TOOLS[1].name]["items"]["properties"]
    assert entry["name"]["enum"] == sorted([TOOLS[0].name, TOOLS[2].name])
    assert schema["required"] == [TOOLS[1].name]


@pytest.mark.parametrize("mode", ["json_schema", "json_object"])
def test_every_json_task_sends_a_schema_its_answers_satisfy(tmp_path, mode):
    offline = _everything(TaskRunner(load_settings().llm))
    with TestServer() as server:
        runner = _runner(server, mode, tmp_path / "cache")
        answered = _everything(runner)
        runner.close()
        sent = {task for task, n in server.structured.items() if n}
        assert sent == SCHEMA_TASKS, dict(server.structured)
        assert not sent & TEXT_TASKS and server.by_task["forth_translate"] > 0 and server.by_task["teacher_turn"] > 0
        assert server.schema_violations == []  # each schema accepts the answers the parsers read
        assert sum(server.structured.values()) == sum(server.by_task[t] for t in SCHEMA_TASKS)
    assert answered == offline
    assert offline["verdicts"] == offline["expected_verdicts"]
    stats = runner.stats
    assert all(s.rejects == 0 and s.reasks == 0 for s in stats.values()), {k: s.reject_reasons for k, s in stats.items()}


def test_auto_sends_nothing_to_an_unknown_server(tmp_path):
    with TestServer() as server:
        runner = _runner(server, "auto")
        messages, params = runner.prompt(CLASSIFY_TOOL, classify_items()[0])
        assert "response_format" not in params
        runner.run(CLASSIFY_TOOL, classify_items()[:3])
        assert sum(server.structured.values()) == 0 and server.by_task["classify_tool"] == 3


# --------------------------------------------------------------------------- native tool calling (student / evaluation)


def test_native_tool_calls_for_the_served_student(tmp_path):
    from magnet_lib.models import Call
    from magnet_lib.training.student import ServedStudent, StudentRequest, StudentStepInput, StudentStepTask, native_reply

    episode, traj = navigation_episode()
    messages = traj.messages[:2]
    item = StudentStepInput(messages=messages, tools=traj.tools)
    assert StudentStepTask().request_params(item) == {}
    assert StudentStepTask(native_tools=True).request_params(item) == {"tools": traj.tools}
    assert StudentStepTask(native_tools=True).response_schema(item) is None
    # what the LLM client writes for an answer with native tool_calls
    text = '{"content": "Looking.", "tool_calls": [{"name": "search_places", "arguments": {"query": "museum"}}, {"name": "x", "arguments": "{bad"}]}'
    reply = native_reply(text)
    assert reply.text == "Looking." and reply.calls == [Call(name="search_places", arguments={"query": "museum"})]
    assert len(reply.malformed) == 1
    assert native_reply("<tool_call>\n{}\n</tool_call>") is None
    # through HTTP: tools are sent, and a text answer with <tool_call> blocks still parses
    with TestServer() as server:
        student = ServedStudent(_runner(server, "auto"), max_new_tokens=64, temperature=0.0, native_tools=True)
        _, params = student.runner.prompt(student.task, item)
        assert params["tools"] == traj.tools
        ref = next(m for m in traj.messages if m["role"] == "assistant")
        (got,) = student.respond([StudentRequest(messages=messages, tools=traj.tools, reference=ref)])
        assert [c.name for c in got.calls] == [tc["function"]["name"] for tc in ref.get("tool_calls") or []]
