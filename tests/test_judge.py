"""The error judge: offline rules per error type, the judge_errors task, and its LLM path."""

from __future__ import annotations

import json

import pytest

from magnet_lib.llm.runner import TaskRunner
from magnet_lib.llm.task import ParseError
from magnet_lib.models import Call
from magnet_lib.settings import LLMSettings
from magnet_lib.training.error_judge import (
    JudgeErrorsTask,
    JudgeVerdict,
    judge_turn,
)
from magnet_lib.training.reference import Reference, judge_item
from tests.training_support import navigation_episode


@pytest.fixture(scope="module")
def ref() -> Reference:
    episode, traj = navigation_episode()
    return Reference(traj, episode)


def calls_turn(*calls: Call, outputs=None, text: str | None = "Done.") -> list[dict]:
    msgs = []
    for i, c in enumerate(calls):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [c.to_openai(f"x{i}")]})
        msgs.append({"role": "tool", "tool_call_id": f"x{i}", "content": json.dumps((outputs or {}).get(i, {"ok": True}))})
    if text is not None:
        msgs.append({"role": "assistant", "content": text})
    return msgs


def ref_calls(ref: Reference, turn: int) -> list[Call]:
    from magnet_lib.training.error_judge import turn_calls

    return [r.call for r in turn_calls(ref.turns[turn].responses)]


def verdict(ref: Reference, turn: int, response: list[dict], **kw) -> JudgeVerdict:
    return judge_turn(judge_item(ref, turn, response, **kw))


def test_the_reference_is_judged_correct(ref):
    for t in ref.turns:
        assert verdict(ref, t.index, t.responses).correct


def test_each_error_type(ref):
    (search,) = ref_calls(ref, 0)
    dist, conv = ref_calls(ref, 1)
    (route,) = ref_calls(ref, 3)
    dist_out = ref.turns[1].responses[1]["content"]
    # 1: the nested conversion on the distance is not made
    v = verdict(ref, 1, calls_turn(dist, outputs={0: json.loads(dist_out)}, text=f"It is {json.loads(dist_out)['distance']} miles."))
    assert (v.correct, v.error_type) == (False, 1)
    # 2: the conversion uses a value that is not the distance just returned
    wrong_conv = Call(name=conv.name, arguments={**conv.arguments, "value": 99.5})
    assert verdict(ref, 1, calls_turn(dist, wrong_conv, outputs={0: json.loads(dist_out)})).error_type == 2
    # 3: the route ignores the place found in turn 1, or asks for it again
    wrong_route = Call(name=route.name, arguments={**route.arguments, "origin_place_id": "PL-000001"})
    assert verdict(ref, 3, calls_turn(wrong_route)).error_type == 3
    assert verdict(ref, 3, [{"role": "assistant", "content": "Which place should the route start from?"}]).error_type == 3
    # 4: right call, the reply invents a number
    out = json.loads(ref.turns[3].responses[1]["content"])
    assert verdict(ref, 3, calls_turn(route, outputs={0: out}, text=f"Route {out['route_id']} takes 12345.6 minutes.")).error_type == 4
    # 4: right call, the reply leaves out what the reference reports
    assert (
        verdict(
            ref, 0, calls_turn(search, outputs={0: json.loads(ref.turns[0].responses[1]["content"])}, text="I found a place.")
        ).error_type
        == 4
    )
    # 5: calls where the split turn should ask; asks where it could call
    assert verdict(ref, 2, calls_turn(route)).error_type == 5
    assert verdict(ref, 0, [{"role": "assistant", "content": "Which city do you mean?"}]).error_type == 5
    # 5: a value the user gave in this turn is wrong
    assert verdict(ref, 0, calls_turn(Call(name=search.name, arguments={**search.arguments, "city": "Nowhere"}))).error_type == 5


def test_acceptable_differences_and_unusable_responses(ref):
    (search,) = ref_calls(ref, 0)
    out = json.loads(ref.turns[0].responses[1]["content"])
    same = ref.turns[0].responses[-1]["content"]
    # argument values compare without case
    upper = Call(name=search.name, arguments={k: (v.upper() if isinstance(v, str) else v) for k, v in search.arguments.items()})
    assert verdict(ref, 0, calls_turn(upper, outputs={0: out}, text=same)).correct
    # only one of them is a call: wrong; with no type when the words neither ask nor say what is missing
    v = verdict(ref, 0, [{"role": "assistant", "content": "Sure, the weather is nice."}])
    assert (v.correct, v.error_type) == (False, None)
    assert verdict(ref, 0, [{"role": "assistant", "content": "ame transaction\ufffd device"}]).error_type is None
    assert verdict(ref, 0, calls_turn(Call(name="book_flight", arguments={}))).error_type is None
    assert verdict(ref, 0, [{"role": "assistant", "content": "partial"}], truncated=True).error_type is None
    assert verdict(ref, 0, [{"role": "assistant", "content": ""}], malformed=["{oops"]).error_type is None


def test_defaults_make_extra_parameters_acceptable(ref):
    (route,) = ref_calls(ref, 3)
    args = {k: v for k, v in route.arguments.items() if k != "mode"}
    reference = calls_turn(Call(name=route.name, arguments=args), text=None)
    item = judge_item(ref, 3, calls_turn(Call(name=route.name, arguments={**args, "mode": "driving"}), text=None))
    item = item.model_copy(update={"reference": reference + [{"role": "assistant", "content": "Done."}]})
    item.response.append({"role": "assistant", "content": "Done."})
    assert judge_turn(item).correct  # plan_route's mode defaults to driving
    item.response[0]["tool_calls"][0]["function"]["arguments"] = json.dumps({**args, "mode": "walking"})
    assert judge_turn(item).error_type == 5


def test_task_parse_and_render(ref):
    task = JudgeErrorsTask()
    item = judge_item(ref, 2, calls_turn(*ref_calls(ref, 3)))
    messages = task.render(item)
    assert messages[0]["role"] == "system" and "nested call missing" in messages[0]["content"]
    assert "plan_route(" in messages[1]["content"] and "labelled miss_params" in messages[1]["content"]
    value = task.offline(item)
    assert task.parse(task.answer_text(value), item) == value
    assert task.parse('```json\n{"correct": false, "error_type": "3", "reason": "r"}\n```', item).error_type == 3
    for bad in ('{"correct": true, "error_type": 2, "reason": "r"}', '{"correct": false, "error_type": 9, "reason": "r"}', "no"):
        with pytest.raises(ParseError):
            task.parse(bad, item)


def test_judge_through_the_llm_layer(ref, tmp_path):
    from magnet_lib.testing.server import TestServer

    items = [judge_item(ref, t.index, t.responses) for t in ref.turns] + [judge_item(ref, 2, calls_turn(*ref_calls(ref, 3)))]
    with TestServer() as server:
        runner = TaskRunner(LLMSettings(model="openai/judge", api_base=server.url, api_key="sk-test"), cache_dir=tmp_path)
        results = runner.run(JudgeErrorsTask(), items)
        assert server.by_task.get("judge_errors") == len(items)
    assert [r.value for r in results] == [judge_turn(i) for i in items]
    assert all(r.generator == "openai/judge" for r in results)
