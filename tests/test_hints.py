"""Negative hints: injected errors per type (judged as that type, outputs real), student errors,
negative trajectories and the mDPO pairs."""

from __future__ import annotations

import json

import pytest

from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import NegativeHint
from magnet_lib.settings import LLMSettings, load_settings
from magnet_lib.training.base_models import build_tiny
from magnet_lib.training.error_judge import judge_turn, turn_calls
from magnet_lib.training.hints import (
    assemble_pair,
    inject_errors,
    misleading_hint,
    negative_hints,
    negative_turn,
    preference_pairs,
    rebuild_turn,
)
from magnet_lib.training.reference import Reference, judge_item
from magnet_lib.training.student import ServedStudent, TransformersStudent
from tests.llm_server import llm_server
from tests.training_support import navigation_episode, navigation_tools


@pytest.fixture(scope="module")
def ref() -> Reference:
    episode, traj = navigation_episode()
    return Reference(traj, episode)


def test_every_type_is_injected_and_judged_as_that_type(ref):
    tools = navigation_tools()
    injections = inject_errors(ref, tools)
    assert sorted(i.hint.error_type for i in injections) == [1, 2, 3, 4, 5]
    for inj in injections:
        h = inj.hint
        assert h.source == "injected" and h.traj_id == ref.trajectory.traj_id and h.reason
        verdict = judge_turn(judge_item(ref, h.turn_index, inj.responses))
        assert (verdict.correct, verdict.error_type) == (False, h.error_type), (h, verdict)
        assert rebuild_turn(ref, h, tools) == inj.responses  # the hint alone rebuilds the turn
        # the tool messages are real outputs of the wrong calls, in the world before the turn
        world = ref.world(tools, h.turn_index)
        for rec in turn_calls(inj.responses):
            assert rec.output == world.execute(rec.call)


def test_injected_types_match_the_paper_descriptions(ref):
    by_type = {i.hint.error_type: i for i in inject_errors(ref, navigation_tools())}
    assert [c.name for c in by_type[1].hint.wrong_calls] == ["get_distance"]  # the conversion is dropped
    assert by_type[2].hint.wrong_calls[1].name == "convert_distance"
    distance = turn_calls(ref.turns[1].responses)[0].output["distance"]
    assert by_type[2].hint.wrong_calls[1].arguments["value"] != distance and by_type[2].hint.turn_index == 1
    assert "?" in by_type[3].hint.wrong_text and not by_type[3].hint.wrong_calls
    assert by_type[4].responses[:-1] == ref.turns[by_type[4].hint.turn_index].responses[:-1]
    assert by_type[5].hint.turn_index == 2 and by_type[5].hint.wrong_calls[0].name == "plan_route"  # calls where it should ask


def test_pairs_share_the_prompt_and_diverge_at_the_hinted_turn(ref):
    tools = navigation_tools()
    for inj in inject_errors(ref, tools):
        pair = assemble_pair(ref, inj.hint, negative_turn(ref, inj.hint, tools, None))
        k = inj.hint.turn_index
        assert pair.prompt == ref.trajectory.messages[:2]
        assert [m["role"] for m in pair.prompt] == ["system", "user"]
        assert pair.chosen[-1] == ref.turns[k].responses[-1] and pair.chosen[0]["role"] == "assistant"
        shared = len(pair.chosen) - len(ref.turns[k].responses)
        assert pair.rejected[:shared] == pair.chosen[:shared] and pair.rejected != pair.chosen
        assert sum(m["role"] == "user" for m in pair.chosen) == sum(m["role"] == "user" for m in pair.rejected) == k
        assert (pair.error_type, pair.source, pair.hint_id, pair.episode_id) == (
            inj.hint.error_type,
            "injected",
            inj.hint.hint_id,
            ref.episode.episode_id,
        )
        assert json.dumps(pair.model_dump())  # JSON-ready


def test_negative_hints_with_the_tiny_student_fall_back_to_injection(magnet_home):
    episode, traj = navigation_episode()
    settings = load_settings()
    model, tok = build_tiny([{"messages": traj.messages, "tools": traj.tools}])
    student = TransformersStudent(model=model, tokenizer=tok, max_new_tokens=8)
    hints, report = negative_hints(settings, [episode], [traj], TaskRunner(), student=student)
    assert report.student_episodes == 1 and report.samples == 2 and report.judged_turns >= 2
    assert report.student_hints == 0 and report.unusable_turns == 2  # 8 tokens: every reply is cut
    assert sorted(h.error_type for h in hints) == [1, 2, 3, 4, 5] and report.injected_hints == 5
    assert report.as_dict()["by_type"] == {str(t): 1 for t in range(1, 6)}


def test_a_student_hint_is_resampled_with_the_misleading_hint(ref, tmp_path):
    """The paper's negative trajectory: the student re-samples the turn with the wrong calls
    as a hint. Here the (served, error-free) student ignores the hint, so the turn is rebuilt
    from the hint; the re-sample was asked for."""
    from magnet_lib.testing.server import TestServer

    tools = navigation_tools()
    dist = turn_calls(ref.turns[1].responses)[0].call
    hint = NegativeHint(
        hint_id="h1",
        episode_id=ref.episode.episode_id,
        traj_id=ref.trajectory.traj_id + "/s3",
        category="navigation",
        turn_index=1,
        error_type=1,
        reason="nested call missing",
        wrong_calls=[dist],
        wrong_text="It is far.",
        source="student",
    )
    assert misleading_hint(hint) == "[" + dist.to_python() + "]"
    with TestServer() as server:
        student = ServedStudent(TaskRunner(LLMSettings(model="openai/student", api_base=server.url, api_key="sk-test"), cache_dir=tmp_path))
        negative = negative_turn(ref, hint, tools, student)
        assert server.by_task.get("student_step", 0) >= 1
    assert not negative.resampled and negative.error_type == 1
    assert [r.call for r in turn_calls(negative.responses)] == [dist] and negative.responses[-1]["content"] == "It is far."
    pairs, counts = preference_pairs(
        load_settings(home=str(tmp_path)), [hint], [ref.episode], [ref.trajectory], student=None, pool={t.name: t for t in tools}
    )
    assert counts == {"rebuilt": 1} and pairs[0].source == "student" and pairs[0].traj_id == ref.trajectory.traj_id


def test_rejected_calls_are_written_in_the_reference_turns_style(ref):
    """The hand-written reference makes one call per message with content None and ids
    ``call_<n>``: a rejected turn copies that, so only the error differs."""
    tools = navigation_tools()
    checked = set()
    for inj in inject_errors(ref, tools):
        if not inj.hint.wrong_calls:
            continue
        chosen = [m for m in ref.turns[inj.hint.turn_index].responses if m.get("tool_calls")]
        rejected = [m for m in inj.responses if m.get("tool_calls")]
        if not chosen:
            continue  # calls where the reference asks (type 5): no calls to copy the style of
        checked.add(inj.hint.error_type)
        assert {m["content"] for m in rejected} == {m["content"] for m in chosen} == {None}
        assert all(len(m["tool_calls"]) == 1 for m in rejected)
        ids = [c["id"] for m in rejected for c in m["tool_calls"]]
        assert ids[: len(chosen)] == [c["id"] for m in chosen for c in m["tool_calls"]][: len(ids)]
        tool_ids = [m["tool_call_id"] for m in inj.responses if m["role"] == "tool"]
        assert tool_ids == ids
    assert checked == {1, 2}


@pytest.fixture(scope="module")
def teacher_refs() -> list[Reference]:
    """References distilled by the offline teacher from translated navigation walks."""
    from magnet_lib.distillation.teacher import distill
    from magnet_lib.pool.envs import builtin_environments
    from magnet_lib.translation.episodes import translate
    from tests.translation_fixtures import navigation_fsps

    tools = builtin_environments()["navigation"].tools()
    settings = load_settings()
    runner = TaskRunner(settings.llm)
    episodes = {e.episode_id: e for e in translate(navigation_fsps(), tools, settings, runner)}
    trajectories = [r.trajectory for r in distill(list(episodes.values()), tools, runner) if r.trajectory is not None]
    return [Reference(t, episodes[t.episode_id]) for t in trajectories]


def test_pairs_from_the_teacher_differ_only_in_the_error(teacher_refs):
    """Lint over every injected pair of the teacher's trajectories: no style difference (ids,
    content, grouping, the summary's opener: the rejected summary is seeded by the same request)
    and no corruption that breaks a date or an id."""
    from magnet_lib.lint import from_records, lint

    tools = builtin_environments_tools()
    pairs = []
    for r in teacher_refs:
        for inj in inject_errors(r, tools):
            pairs.append(assemble_pair(r, inj.hint, negative_turn(r, inj.hint, tools, None)))
    assert len({p.error_type for p in pairs}) >= 4, sorted(p.error_type for p in pairs)
    report = lint(from_records(p.model_dump(mode="json") for p in pairs), rules=["pair_style"])
    assert report.figures["pair_style_difference"]["count"] == 0, report.examples.get("pair_style_difference")
    assert report.figures["implausible_corruption"]["count"] == 0, report.examples.get("implausible_corruption")


def builtin_environments_tools():
    from magnet_lib.pool.envs import builtin_environments

    return builtin_environments()["navigation"].tools()


def test_plausible_wrong_values_keep_their_form():
    from magnet_lib.training.hints import _other_value, drop_fact, wrong_number

    rng = __import__("random").Random(0)
    assert wrong_number("25") == "31" and wrong_number("12.5") == "15.6" and wrong_number("0.07") == "0.09"
    assert wrong_number("25", {"31"}) == "20"  # never a figure the outputs hold
    assert _other_value("2025-06-30", [], rng) == "2025-07-01"  # a real date, a day later
    assert _other_value("ACC-50207954", [], rng) == "ACC-50207957"
    assert isinstance(_other_value(3, [], rng), int)
    # a dropped fact drops its clause, not a token ("your order that one is placed")
    assert drop_fact("Done. Order: order id PO-204489, status placed, total 25.", "PO-204489") == "Done. Order: status placed, total 25."
    assert drop_fact("Order placed: status placed, order id PO-204489.", "PO-204489") == "Order placed: status placed."


def test_rejected_replies_are_written_by_the_teacher_that_wrote_the_chosen_ones(llm_server, tmp_path):
    """In LLM mode the reply after a rejected side's calls comes from the teacher model (one
    teacher_turn request each, with the offered tools and the wrong calls' outputs), not from the
    offline template while the chosen side's replies are the model's; offline the reply is the
    offline teacher's, as before."""
    from tests.llm_server import make_runner

    episode, traj = navigation_episode()
    tools = navigation_tools()
    offline = {i.hint.error_type: i.responses for i in inject_errors(Reference(traj, episode), tools, [1, 2, 5])}
    assert llm_server.by_task["teacher_turn"] == 0
    runner = make_runner(llm_server, tmp_path / "cache")
    injections = inject_errors(Reference(traj, episode, runner), tools, [1, 2, 5])
    replayed = [i for i in injections if any(m.get("tool_calls") for m in i.responses)]
    assert replayed, [i.hint.error_type for i in injections]
    assert llm_server.by_task["teacher_turn"] == len(replayed)
    for inj in replayed:
        reply = inj.responses[-1]
        assert reply["role"] == "assistant" and not reply.get("tool_calls") and reply["content"].strip()
        # the test model answers as the offline teacher would for the same prompt: the prompt held
        # the user's request and the wrong calls' outputs
        assert inj.responses == offline[inj.hint.error_type]
