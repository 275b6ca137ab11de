"""Back-and-forth translation, turn by turn, on the navigation environment."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from magnet_lib.llm.runner import TaskRunner
from magnet_lib.llm.task import ParseError
from magnet_lib.models import AugmentedFSP, Call, FSPTurn
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.pool.execution import EpisodeRuntime
from magnet_lib.pool.function_pool import validate_arguments
from magnet_lib.settings import load_settings
from magnet_lib.training import chat_format as cf
from magnet_lib.translation.back_translation import (
    BACK_TRANSLATE,
    BackTranslateInput,
    FunctionRequest,
    MissingValue,
    check_query,
    offline_query,
    parse_query,
)
from magnet_lib.translation.episodes import translate
from magnet_lib.translation.forth_translation import (
    FORTH_TRANSLATE,
    ForthTranslateInput,
    ForthTranslateTask,
    ForthTranslation,
    match_score,
    parse_answer,
)
from tests.translation_fixtures import navigation_fsps

TOOLS = builtin_environments()["navigation"].tools()
BY_NAME = {t.name: t for t in TOOLS}


def _with_parallel_p(settings, p: float):
    return settings.model_copy(update={"distill": settings.distill.model_copy(update={"parallel_p": p})})


@pytest.fixture(scope="module")
def settings():
    return load_settings()


@pytest.fixture(scope="module")
def episodes(settings):
    """One call per function of a turn (no parallel calls: those are tested on their own)."""
    narrow = _with_parallel_p(settings, 0.0)
    return {e.fsp_id: e for e in translate(navigation_fsps(), TOOLS, narrow, TaskRunner(narrow.llm))}


def test_system_prompt_is_bfcl_style_with_the_functions_in_json():
    text = cf.system_prompt([TOOLS[0].openai_spec()])
    assert "expert at composing function calls" in text
    assert "none of the functions fits" in text and "lacks a value" in text
    assert f'"name": "{TOOLS[0].name}"' in text


def test_every_episode_translates_and_every_call_executes(episodes):
    assert all(e.status == "ok" for e in episodes.values()), [e.reject_reason for e in episodes.values()]
    for episode in episodes.values():
        runtime = EpisodeRuntime([BY_NAME[n] for n in episode.tools], episode.seed)
        assert episode.initial_state == runtime.initial_state
        queries = [t.query for t in episode.turns]
        assert len(set(queries)) == len(queries), "a query repeats an earlier one"
        for turn in episode.turns:
            assert not any(name in turn.query for name in BY_NAME if "_" in name), turn.query
            assert len(turn.calls) == len(turn.outputs) == len(turn.rounds) == len(turn.sources)
            for call, output in zip(turn.calls, turn.outputs):
                assert call.name in turn.offered
                assert not validate_arguments(BY_NAME[call.name], call.arguments)
                assert runtime.execute(call) == output  # replaying the calls gives the recorded outputs


def test_nested_calls_use_the_output_of_the_call_before(episodes):
    turn = episodes["nested"].turns[1]
    assert [c.name for c in turn.calls] == ["get_distance", "convert_distance"]
    assert turn.rounds == [0, 1]
    assert turn.calls[1].arguments["value"] == turn.outputs[0]["distance"]
    assert turn.calls[1].arguments["from_unit"] == "miles"  # the unit get_distance answered in
    assert turn.sources[1]["value"] == "same_turn"
    assert turn.sources[0]["origin_place_id"] == "previous_turn"


def test_values_from_earlier_turns_and_user_values_are_stated_or_referred_to(episodes):
    turns = episodes["nested"].turns
    assert turns[2].sources[0]["origin_place_id"] == "earlier_turn"  # a long dependency
    search = turns[0].calls[0]
    assert search.arguments["query"] in turns[0].query  # a value the user states is in the query
    assert turns[2].calls[0].arguments["origin_place_id"] not in turns[2].query  # an earlier output is referred to


def test_miss_func_withholds_the_target_until_the_turn_after(episodes):
    turns = episodes["missfunc"].turns
    split, resume = turns[1], turns[2]
    assert split.op == "split" and split.label == "miss_func" and not split.calls
    assert split.missing == "save_place"
    assert "save_place" not in turns[0].offered and "save_place" not in split.offered
    assert "save_place" in resume.offered and [c.name for c in resume.calls] == ["save_place"]


def test_miss_params_leaves_a_value_out_and_the_next_turn_gives_it(episodes):
    turns = episodes["missparams"].turns
    split, resume = turns[1], turns[2]
    assert split.label == "miss_params" and split.target == "search_places" and not split.calls
    value = resume.calls[0].arguments[split.missing]
    assert str(value) not in split.query and str(value) in resume.query


def test_a_turn_without_a_value_source_is_rejected_with_the_reason(settings):
    fsp = AugmentedFSP(
        fsp_id="bad",
        parent_fsp_id="w",
        category="navigation",
        variant="no_split",
        seed=0,
        turns=[FSPTurn(functions=["get_route_details"], op="walk"), FSPTurn(functions=["start_navigation"], op="walk")],
    )
    [episode] = translate([fsp], TOOLS, settings, TaskRunner(settings.llm))
    assert episode.status == "rejected"
    assert "route_id" in episode.reject_reason and episode.reject_reason.startswith("turn 0")


class FlakyForth(ForthTranslateTask):
    """Answers the first attempt at the start_navigation turn with a call that fails after a
    state change (a trip is started, then an unknown trip is asked about)."""

    def offline(self, item: ForthTranslateInput) -> ForthTranslation:
        names = {f["name"] for f in item.functions}
        if item.attempt == 0 and "start_navigation" in names:
            good = super().offline(item)
            return ForthTranslation(calls=[good.calls[0], Call(name="get_eta", arguments={"trip_id": "TR-000000"})])
        return super().offline(item)


def test_a_failing_turn_is_retried_from_the_state_before_it(settings, episodes):
    tasks = {"back_translate": BACK_TRANSLATE, "forth_translate": FlakyForth()}
    fsp = next(f for f in navigation_fsps() if f.fsp_id == "nested")
    settings = _with_parallel_p(settings, 0.0)  # as the episodes compared with: one call per function
    [retried] = translate([fsp], TOOLS, settings, TaskRunner(settings.llm), tasks)
    assert retried.status == "ok"
    # the failed attempt started a trip; the retry starts from the state before it, so the
    # trip id (drawn from the environment's seeded generator) is the same as without failure
    assert retried.turns[3].outputs == episodes["nested"].turns[3].outputs
    strict = settings.model_copy(update={"distill": settings.distill.model_copy(update={"turn_retries": 0})})
    [rejected] = translate([fsp], TOOLS, strict, TaskRunner(strict.llm), tasks)
    assert rejected.status == "rejected" and "no_active_trip" in rejected.reject_reason


def _request() -> BackTranslateInput:
    return BackTranslateInput(
        category="navigation",
        requests=[
            FunctionRequest(
                function="search_places", description=BY_NAME["search_places"].description, values={"query": "museum", "city": "Oakland"}
            )
        ],
        avoid_names=sorted(BY_NAME),
        previous_queries=["Find me a museum in Oakland."],
    )


def test_back_translation_rules_are_enforced_on_any_answer():
    item = _request()
    assert "museum" in offline_query(item).query
    with pytest.raises(ParseError, match="names function"):
        check_query("Please call search_places for a museum in Oakland", item)
    with pytest.raises(ParseError, match="city"):
        check_query("Find me a museum somewhere", item)
    with pytest.raises(ParseError, match="repeats"):
        check_query("Find me a museum in Oakland!", item)
    assert parse_query('{"query": "Any museums in Oakland?"}', item).query == "Any museums in Oakland?"
    split = item.model_copy(
        update={"mode": "split_miss_params", "missing": MissingValue(function="search_places", param="city", value="Oakland")}
    )
    with pytest.raises(ParseError, match="leave out"):
        check_query("Any museums in Oakland?", split)
    check_query("Any museums around here?", split)


def test_forth_translation_answers_are_parsed_and_validated():
    tool = BY_NAME["get_distance"]
    item = ForthTranslateInput(
        queries=["q"], functions=[{"name": tool.name, "description": tool.description, "parameters": tool.parameters}]
    )
    args = {"origin_place_id": "PL-1", "destination_place_id": "PL-2"}
    parsed = parse_answer(f'Thought: easy\nAnswer: [{{"name": "get_distance", "arguments": {json.dumps(args)}}}]', item)
    assert parsed.calls == [Call(name="get_distance", arguments=args)] and parsed.thought == "easy"
    python_style = "Thought: t\nAnswer: [get_distance(origin_place_id='PL-1', destination_place_id='PL-2')]"
    assert parse_answer(python_style, item).calls[0].arguments == args
    assert parse_answer("Thought: nothing left\nAnswer: FINISH", item).finish
    with pytest.raises(ParseError, match="not one of the functions"):
        parse_answer('Answer: [{"name": "launch_rocket", "arguments": {}}]', item)
    with pytest.raises(ParseError, match="invalid arguments"):
        parse_answer('Answer: [{"name": "get_distance", "arguments": {"origin_place_id": "PL-1"}}]', item)


def test_answer_text_round_trips_through_the_parsers(episodes, settings):
    """What the test server answers (answer_text of the offline output) parses back to it."""
    item = _request()
    assert BACK_TRANSLATE.parse(BACK_TRANSLATE.answer_text(BACK_TRANSLATE.offline(item)), item) == BACK_TRANSLATE.offline(item)
    fsp = navigation_fsps()[0]
    captured: list[ForthTranslateInput] = []

    class Capture(ForthTranslateTask):
        def offline(self, item):
            captured.append(item)
            return super().offline(item)

    translate([fsp], TOOLS, settings, TaskRunner(settings.llm), {"back_translate": BACK_TRANSLATE, "forth_translate": Capture()})
    for forth_item in captured:
        out = FORTH_TRANSLATE.offline(forth_item)
        assert FORTH_TRANSLATE.parse(FORTH_TRANSLATE.answer_text(out), forth_item) == out
        FORTH_TRANSLATE.render(forth_item)  # the template renders every item


def test_output_fields_match_parameters_by_name():
    assert match_score("place_id", "place_id") == 3
    assert match_score("origin_place_id", "place_id") == 2
    assert match_score("place_id", "place_ids") == 2.5
    assert match_score("city", "route_id") == 0
    assert match_score("from_unit", "unit") == 1  # generic: only with a matching type


def test_parallel_calls_ask_for_each_value_and_stay_within_the_turn_limit(settings):
    from magnet_lib.distillation.quality import is_parallel

    wide = _with_parallel_p(settings, 1.0)
    episodes = translate(navigation_fsps(), TOOLS, wide, TaskRunner(wide.llm))
    assert all(e.status == "ok" for e in episodes), [e.reject_reason for e in episodes]
    parallel = 0
    for episode in episodes:
        runtime = EpisodeRuntime([BY_NAME[n] for n in episode.tools], episode.seed)
        for turn in episode.turns:
            # at most max_calls_per_turn functions, each called at most max_parallel_calls times side by side
            assert len({c.name for c in turn.calls}) <= settings.graph.max_calls_per_turn
            assert Counter(turn.rounds).most_common(1)[0][1] <= settings.graph.max_parallel_calls if turn.calls else True
            for call, output in zip(turn.calls, turn.outputs):
                assert runtime.execute(call) == output and "error" not in output
            if not is_parallel(turn):
                continue
            parallel += 1
            for name, count in Counter(c.name for c in turn.calls).items():
                if count < 2:
                    continue
                assert 2 <= count <= settings.graph.max_parallel_calls
                same = [c.arguments for c in turn.calls if c.name == name]
                assert len({json.dumps(a, sort_keys=True) for a in same}) == count  # distinct values
                varying = {p for p in same[0] if len({json.dumps(a[p]) for a in same}) > 1}
                assert len(varying) == 1
                [param] = varying
                asked = " ".join(t.query for t in episode.turns[: turn.index + 1])  # a resumed split asked in the turn before
                stated = all(turn.sources[k].get(param) == "query" for k, c in enumerate(turn.calls) if c.name == name)
                if stated:
                    assert all(str(a[param]) in asked for a in same), (asked, same)
                else:
                    assert f"first {['two', 'three'][count - 2]}" in asked or f"top {['two', 'three'][count - 2]}" in asked
    assert parallel >= 2


def test_parallel_p_zero_is_translation_without_parallel_calls(settings, episodes, monkeypatch):
    """parallel_p=0 gives exactly the data of a translation that never plans parallel calls."""
    import magnet_lib.translation.episodes as translation

    for episode in episodes.values():
        for turn in episode.turns:
            assert Counter(c.name for c in turn.calls) == Counter(turn.functions)
    monkeypatch.setattr(translation, "parallel_plan", lambda *a, **k: None)
    monkeypatch.setattr(translation, "for_each_plan", lambda *a, **k: None)
    without = translate(navigation_fsps(), TOOLS, settings, TaskRunner(settings.llm))
    assert [e.model_dump() for e in without] == [episodes[e.fsp_id].model_dump() for e in without]


def test_parallel_calls_of_one_function_get_unique_tool_call_ids(settings):
    from magnet_lib.distillation.teacher import TEACHER_TURN, distill_episode
    from magnet_lib.translation.episodes import run_interleaved

    wide = _with_parallel_p(settings, 1.0)
    episodes = translate(navigation_fsps(), TOOLS, wide, TaskRunner(wide.llm))
    results = run_interleaved([distill_episode(e, BY_NAME, TEACHER_TURN) for e in episodes], TaskRunner(wide.llm))
    for result in results:
        assert result.trajectory is not None, result.reject_reason
        ids = [c["id"] for m in result.trajectory.messages if m.get("role") == "assistant" for c in m.get("tool_calls") or []]
        assert len(ids) == len(set(ids))
        parallel = [m for m in result.trajectory.messages if m.get("role") == "assistant" and len(m.get("tool_calls") or []) > 1]
        assert parallel  # parallel calls share one assistant message
