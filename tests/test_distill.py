"""Hint-guided context distillation: positive trajectories from translated episodes."""

from __future__ import annotations

import json

import pytest

from magnet_lib.distillation.teacher import (
    TEACHER_TURN,
    TeacherStepInput,
    call_problems,
    distill,
    parse_teacher,
)
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.llm.task import ParseError
from magnet_lib.models import Call
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.settings import load_settings
from magnet_lib.training import chat_format as cf
from magnet_lib.translation.episodes import translate
from tests.translation_fixtures import navigation_fsps

TOOLS = builtin_environments()["navigation"].tools()
BY_NAME = {t.name: t for t in TOOLS}


@pytest.fixture(scope="module")
def distilled():
    settings = load_settings()
    runner = TaskRunner(settings.llm)
    episodes = {e.fsp_id: e for e in translate(navigation_fsps(), TOOLS, settings, runner)}
    results = distill(list(episodes.values()), TOOLS, runner)
    assert all(r.trajectory is not None for r in results), [r.reject_reason for r in results]
    by_fsp = {r.trajectory.fsp_id: r.trajectory for r in results}
    return episodes, by_fsp


def test_trajectories_are_openai_chat_with_tools_and_the_system_prompt(distilled):
    episodes, trajectories = distilled
    for fsp_id, t in trajectories.items():
        assert t.kind == "multi_turn" and t.episode_id == episodes[fsp_id].episode_id
        assert t.parent_fsp_id == f"walk-{fsp_id}"
        assert t.messages[0] == cf.system(t.tools)
        assert call_problems(t, BY_NAME) == []
        for m in t.messages:
            assert m["role"] in ("system", "user", "assistant", "tool")
            if m["role"] == "assistant" and not m.get("tool_calls"):
                assert "hint" not in m["content"].lower()
        # the tool messages are the real outputs recorded in the episode
        outputs = [json.loads(m["content"]) for m in t.messages if m["role"] == "tool"]
        assert outputs == [o for turn in episodes[fsp_id].turns for o in turn.outputs]


def test_nested_hints_give_one_call_per_message_then_a_summary(distilled):
    _, trajectories = distilled
    messages = trajectories["nested"].messages
    second_user = [i for i, m in enumerate(messages) if m["role"] == "user"][1]
    roles = [m["role"] for m in messages[second_user : second_user + 6]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    first, second = messages[second_user + 1], messages[second_user + 3]
    assert [c["function"]["name"] for c in first["tool_calls"]] == ["get_distance"]
    assert [c["function"]["name"] for c in second["tool_calls"]] == ["convert_distance"]
    assert messages[second_user + 2]["tool_call_id"] == first["tool_calls"][0]["id"]
    summary = messages[second_user + 5]["content"]
    assert "16.81" in summary or "distance" in summary


def test_miss_func_says_what_is_missing_and_the_function_is_added_later(distilled):
    _, trajectories = distilled
    t = trajectories["missfunc"]
    assert "save_place" not in [s["function"]["name"] for s in t.tools]
    [update] = t.tool_updates
    added = t.messages[update["message_index"]]
    assert added["role"] == "user" and added["content"].startswith(cf.TOOLS_ADDED_PREFIX)
    assert [s["function"]["name"] for s in update["tools"]] == ["save_place"]
    reply = t.messages[update["message_index"] - 1]
    assert reply["role"] == "assistant" and not reply.get("tool_calls") and "saved places" in reply["content"]
    assert t.messages[update["message_index"] + 1]["tool_calls"][0]["function"]["name"] == "save_place"


def test_miss_params_asks_for_the_value(distilled):
    episodes, trajectories = distilled
    split = episodes["missparams"].turns[1]
    t = trajectories["missparams"]
    users = [i for i, m in enumerate(t.messages) if m["role"] == "user"]
    ask = t.messages[users[1] + 1]
    assert ask["role"] == "assistant" and not ask.get("tool_calls")
    assert "?" in ask["content"] and split.missing.replace("_", " ") in ask["content"]


def test_offered_and_valid_check_catches_bad_calls(distilled):
    _, trajectories = distilled
    t = trajectories["missfunc"]
    early = t.model_copy(update={"tool_updates": []})  # save_place never offered
    assert any("not offered" in p for p in call_problems(early, BY_NAME))


def _item(**kw) -> TeacherStepInput:
    base = dict(tools=[BY_NAME["get_distance"].openai_spec()], transcript=[{"role": "user", "content": "q\n[Hint]: [...]"}])
    return TeacherStepInput(**{**base, **kw})


def test_teacher_answers_are_checked_against_the_hint():
    call = Call(name="get_distance", arguments={"origin_place_id": "PL-1", "destination_place_id": "PL-2"})
    item = _item(expected="call", step_calls=[call])
    answer = TEACHER_TURN.answer_text(TEACHER_TURN.offline(item))
    assert parse_teacher(answer, item).calls == [call]
    with pytest.raises(ParseError, match="exactly the hint"):
        parse_teacher('Answer: [{"name": "get_distance", "arguments": {"origin_place_id": "PL-9", "destination_place_id": "PL-2"}}]', item)
    with pytest.raises(ParseError, match="never mention the hint"):
        parse_teacher("As the hint says, it is 3 miles.", _item(expected="text"))
    with pytest.raises(ParseError, match="plain text"):
        parse_teacher(f"Answer: {json.dumps([{'name': 'get_distance', 'arguments': call.arguments}])}", _item(expected="text"))
    with pytest.raises(ParseError, match="ask the user"):
        parse_teacher("I need the city.", _item(expected="text", label="miss_params"))
    assert parse_teacher("Which city do you mean?", _item(expected="text", label="miss_params")).content
    TEACHER_TURN.render(item)
