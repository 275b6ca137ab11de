"""The SFT mix: filters, de-duplication, the held-out split by walk, ratios, shuffled tools."""

from __future__ import annotations

import pytest

from magnet_lib.distillation.mixing import (
    build_sft_set,
    deduplicate,
    is_heldout,
    mix_counts,
    mix_shares,
)
from magnet_lib.distillation.single_turn import item_counts, make_single_turn
from magnet_lib.distillation.teacher import distill
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import Trajectory
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.settings import DistillSettings, load_settings
from magnet_lib.training import chat_format as cf
from magnet_lib.translation.episodes import translate
from tests.translation_fixtures import augmented_for


@pytest.fixture(scope="module")
def pool():
    """Multi-turn, single-turn and irrelevance items of two built-in categories."""
    settings = load_settings()
    items: list[Trajectory] = []
    for category in ("navigation", "weather"):
        tools = builtin_environments()[category].tools()
        runner = TaskRunner(settings.llm)
        episodes = translate(augmented_for(tools, settings), tools, settings, runner)
        multi = [r.trajectory for r in distill(episodes, tools, runner) if r.trajectory]
        singles, _ = make_single_turn(tools, item_counts(len(multi), settings), settings, runner)
        items += multi + singles
    return settings, items


def test_the_mix_holds_the_ratios_of_the_settings(pool):
    settings, items = pool
    rows, report = build_sft_set(items, settings.distill)
    shares = mix_shares(rows)
    assert report.selected["multi"] > 0
    for bucket, target in (("single", 0.59), ("multi", 0.23), ("irrelevance", 0.18)):
        assert abs(shares[bucket] - target) <= max(0.02, 1.5 / sum(report.selected.values())), (bucket, shares)
    assert {r.split for r in rows} <= {"train", "heldout"}


def test_filters_and_duplicates_are_removed(pool):
    settings, items = pool
    original = next(t for t in items if t.kind == "single")
    failing = original.model_copy(
        update={"traj_id": "zz-fail", "messages": [*original.messages[:-1], cf.assistant_text("Bad request: nothing found")]}
    )
    exact = original.model_copy(update={"traj_id": "zz-copy"})
    last = original.messages[-1]["content"]
    near = original.model_copy(
        update={"traj_id": "zz-near", "messages": [*original.messages[:-1], cf.assistant_text(last + " Anything else?")]}
    )
    rows, report = build_sft_set([*items, failing, exact, near], settings.distill)
    ids = {r.traj_id for r in rows}
    assert report.failure_keyword == 1 and report.exact_duplicates >= 1 and report.near_duplicates >= 1
    assert not ids & {"zz-fail", "zz-copy", "zz-near"}
    kept, exact_n, near_n = deduplicate(items, DistillSettings().near_duplicate)
    assert len(kept) + exact_n + near_n == len(items)


def test_the_heldout_split_is_by_walk_and_never_trained_on(pool):
    settings, items = pool
    distill_settings = settings.distill.model_copy(update={"heldout_fraction": 0.4})
    rows, report = build_sft_set(items, distill_settings)
    held = [r for r in rows if r.split == "heldout"]
    train = [r for r in rows if r.split == "train"]
    assert held and all(r.kind == "multi_turn" for r in held)
    assert not {r.parent_fsp_id for r in held} & {r.parent_fsp_id for r in train if r.parent_fsp_id}
    # both variants of a held-out walk are held out
    for t in items:
        if t.kind == "multi_turn":
            assert is_heldout(t, 0.4) == (t.parent_fsp_id in {r.parent_fsp_id for r in held})
    assert report.heldout == len(held)


def test_tool_order_is_shuffled_per_example_and_ids_are_kept(pool):
    settings, items = pool
    rows, _ = build_sft_set(items, settings.distill)
    by_id = {t.traj_id: t for t in items}
    changed = 0
    for row in rows:
        source = by_id[row.traj_id]
        names = [t["function"]["name"] for t in row.tools]
        assert sorted(names) == sorted(t["function"]["name"] for t in source.tools)
        assert row.messages[0] == cf.system(row.tools)
        assert row.messages[1:] == source.messages[1:]
        assert (row.episode_id, row.fsp_id, row.parent_fsp_id, row.functions) == (
            source.episode_id,
            source.fsp_id,
            source.parent_fsp_id,
            source.functions,
        )
        changed += names != [t["function"]["name"] for t in source.tools]
    assert changed > len(rows) / 3


def test_mix_counts_are_the_largest_that_hold_the_ratios():
    counts, limiting = mix_counts({"single": 1000, "multi": 23, "irrelevance": 1000}, {"single": 0.59, "multi": 0.23, "irrelevance": 0.18})
    assert counts == {"single": 59, "multi": 23, "irrelevance": 18} and limiting == "multi"
    counts, limiting = mix_counts({"single": 59, "multi": 100, "irrelevance": 100}, {"single": 0.59, "multi": 0.23, "irrelevance": 0.18})
    assert counts["single"] == 59 and limiting == "single"


def test_unstated_knobs_of_the_mix_are_settings(monkeypatch):
    settings = load_settings(distill={"single_shares": {"parallel": 1.0}, "irrelevance_shares": {"no_fit": 1.0}, "oversample": 1.0})
    assert set(item_counts(23, settings)) == {"parallel", "irrelevance_no_fit"}
    monkeypatch.setenv("MAGNET_DISTILL_NEAR_DUPLICATE", "0.5")
    monkeypatch.setenv("MAGNET_DISTILL_SINGLE_SHARES", '{"single": 1}')
    distill = load_settings().distill
    assert (distill.near_duplicate, distill.single_shares, distill.distractors) == (0.5, {"single": 1.0}, 3)
    with pytest.raises(ValueError, match="unknown kind"):
        DistillSettings(irrelevance_shares={"nonsense": 1.0})


def test_stored_rows_hold_the_functions_once_and_every_reader_writes_them_once(pool):
    """The system message of a stored row is the instructions; ``tools`` the functions. The
    training template, a served student without native tools and the HF export each show every
    spec exactly once, and the lint finds no duplicated tool JSON."""
    import json

    from magnet_lib.distillation.export import hf_record
    from magnet_lib.lint import from_records, lint
    from magnet_lib.training.base_models import conversation_texts
    from magnet_lib.training.student import StudentStepInput, StudentStepTask

    settings, items = pool
    rows, _ = build_sft_set(items, settings.distill)
    assert rows and all(r.messages[0]["content"] == cf.SYSTEM_INSTRUCTIONS for r in rows)
    assert lint(from_records(r.model_dump(mode="json") for r in rows), rules=["exports"]).figures["duplicated_tool_json"]["count"] == 0
    row = next(r for r in rows if len(r.tools) > 1)
    text = conversation_texts([{"messages": row.messages, "tools": row.tools}])[0]
    for spec in row.tools:
        assert text.count(f'"name": "{spec["function"]["name"]}"') == 1
    served = StudentStepTask(native_tools=False).render(StudentStepInput(messages=row.messages[:2], tools=row.tools))
    assert served[0]["content"] == cf.system_prompt(row.tools)
    native = StudentStepTask(native_tools=True).render(StudentStepInput(messages=row.messages[:2], tools=row.tools))
    assert native[0]["content"] == cf.SYSTEM_INSTRUCTIONS  # the server's template renders the tools it is sent
    exported = hf_record(row)
    assert exported["messages"][0]["content"] == cf.SYSTEM_INSTRUCTIONS and json.loads(exported["tools"]) == row.tools


def test_the_same_requests_and_calls_are_one_item_whatever_the_replies_and_distractors(pool):
    """Read in the default run: 'What's the trending hashtags?' twice, each with other
    distractor tools and another summary (the lint's exact duplicates: 19 of 1093), and
    'convert 25 km' beside 'convert 30 km' with the same calls by name (near duplicates)."""
    from magnet_lib.distillation.mixing import request_key

    _, items = pool
    original = next(t for t in items if t.kind == "single")
    other_tools = original.model_copy(
        update={
            "traj_id": "zz-other-tools",
            "tools": original.tools[:1],
            "messages": [*original.messages[:-1], cf.assistant_text("Here you go: " + str(original.messages[-1]["content"]))],
        }
    )
    assert request_key(other_tools) == request_key(original)
    user = next(i for i, m in enumerate(original.messages) if m["role"] == "user")
    renumbered = original.messages[user]["content"] + " 42"
    numbered = [{**m, "content": renumbered} if i == user else m for i, m in enumerate(original.messages)]
    other_number = original.model_copy(update={"traj_id": "zz-number-a", "messages": numbered})
    again = original.model_copy(
        update={
            "traj_id": "zz-number-b",
            "messages": [{**m, "content": renumbered.replace("42", "7")} if i == user else m for i, m in enumerate(original.messages)],
        }
    )
    assert request_key(other_number) != request_key(again) and request_key(other_number, loose=True) == request_key(again, loose=True)
    kept, exact_n, near_n = deduplicate([original, other_tools, other_number, again], 1.0)
    assert {t.traj_id for t in kept} == {original.traj_id, "zz-number-a"} and (exact_n, near_n) == (1, 1)
