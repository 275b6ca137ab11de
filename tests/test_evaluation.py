"""Multi-turn evaluation: metrics on hand-built students over a real navigation episode, and
the eval_report asset on a small home."""

from __future__ import annotations

import json

import polars as pl

from magnet_lib.evaluation.multi_turn import (
    compute_metrics,
    evaluate,
    evaluation_references,
    turn_kinds,
)
from magnet_lib.models import Call, Episode, Trajectory
from magnet_lib.tables import to_frame
from magnet_lib.training.error_judge import turn_calls
from magnet_lib.training.reference import Reference, judge_item
from magnet_lib.training.student import StudentReply
from tests.training_support import (
    navigation_episode,
    navigation_tools,
    single_turn_trajectory,
)

POOL = {t.name: t for t in navigation_tools()}


class ScriptedStudent:
    """Answers every step with the reference's message (a perfect model), except where
    ``change`` rewrites it (reference message -> reply)."""

    def __init__(self, name: str = "perfect", change=None):
        self.name = name
        self.change = change

    def respond(self, requests):
        replies = []
        for r in requests:
            ref = r.reference or {"role": "assistant", "content": "Done."}
            reply = StudentReply(text=ref.get("content") or "", calls=[rec.call for rec in turn_calls([ref])])
            replies.append(self.change(ref, reply) if self.change else reply)
        return replies


def drop_nested(ref, reply):
    """Stops before the nested unit conversion and reports the distance in miles only."""
    if any(c.name == "convert_distance" for c in reply.calls):
        return StudentReply(text="The distance is as the map says.")
    return reply


def wrong_mode(ref, reply):
    """Right until the last turn, which plans the route by car instead of by bike."""
    if any(c.name == "plan_route" for c in reply.calls):
        return StudentReply(calls=[Call(name=c.name, arguments={**c.arguments, "mode": "driving"}) for c in reply.calls])
    return reply


def garbled_call(ref, reply):
    return StudentReply(malformed=["<tool_call><tool_call>"], truncated=True)


def reference(seed: int = 7, episode_id: str = "ep-nav-1") -> Reference:
    episode, traj = navigation_episode(seed=seed, episode_id=episode_id)
    return Reference(traj, episode)


def test_turn_kinds_come_from_the_episode():
    ref = reference()
    assert [turn_kinds(ref, i) for i in range(4)] == [["call"], ["nested"], ["miss_params"], ["long_dependency"]]


def test_a_perfect_model_scores_one_everywhere():
    report = evaluate({"perfect": ScriptedStudent()}, [reference(7, "ep-0"), reference(8, "ep-1")], POOL)
    assert report.models == ["perfect"] and len(report.turns) == 8
    assert all(t.correct for t in report.turns), [t.reason for t in report.turns if not t.correct]
    rates = [m for m in report.metrics if m.metric in ("turn_accuracy", "episode_success", "progress_rate")]
    assert {m.kind for m in rates} == {"all", "call", "nested", "long_dependency", "miss_params"}  # no base episode: it has a split turn
    assert all(m.value == 1.0 for m in rates)
    assert all(m.value == 0 for m in report.metrics if m.metric.startswith("error_type") or m.metric in ("unusable", "not_reached"))


def test_dropping_the_nested_call_loses_exactly_that_turn():
    report = evaluate({"perfect": ScriptedStudent(), "lazy": ScriptedStudent("lazy", drop_nested)}, [reference()], POOL)
    lazy = [t for t in report.turns if t.model == "lazy"]
    assert [t.correct for t in lazy] == [True, False, True, True]
    assert lazy[1].error_type == 1 and "convert_distance" in lazy[1].reason
    assert report.value("lazy", "turn_accuracy") == 0.75
    assert report.value("lazy", "turn_accuracy", "nested") == 0.0
    assert report.value("lazy", "turn_accuracy", "long_dependency") == 1.0
    assert report.value("lazy", "episode_success") == 0.0
    assert report.value("lazy", "progress_rate") == 0.25  # one turn right before the first error, of four
    assert report.value("lazy", "error_type_1") == 1
    assert report.differing_turn("perfect", "lazy")[1].turn_index == 1


def test_progress_rate_counts_turns_before_the_first_error():
    refs = [reference(7, "ep-0"), reference(8, "ep-1")]
    report = evaluate({"late": ScriptedStudent("late", wrong_mode), "early": ScriptedStudent("early", drop_nested)}, refs, POOL)
    # the same number of wrong turns, but later: more progress, the same (zero) success
    assert report.value("late", "turn_accuracy") == report.value("early", "turn_accuracy") == 0.75
    assert report.value("late", "episode_success") == report.value("early", "episode_success") == 0.0
    assert report.value("late", "progress_rate") == 0.75 and report.value("early", "progress_rate") == 0.25
    late = [t for t in report.turns if t.model == "late" and not t.correct]
    assert {t.error_type for t in late} == {5} and all("mode" in t.reason for t in late)


def test_an_unusable_reply_ends_the_conversation():
    report = evaluate({"noise": ScriptedStudent("noise", garbled_call)}, [reference()], POOL)
    assert [(t.reached, t.unusable) for t in report.turns] == [(True, True), (False, False), (False, False), (False, False)]
    assert report.value("noise", "unusable") == 1 and report.value("noise", "not_reached") == 3
    assert report.value("noise", "turn_accuracy") == 0.0


def test_metrics_on_crafted_results():
    from magnet_lib.evaluation.multi_turn import TurnResult

    def turn(i, ok, kinds=("call",), traj="a"):
        return TurnResult("m", traj, traj, "c", "no_split", i, list(kinds), ok, None if ok else 5, "", "", "", "")

    # episode a: right, wrong, right; episode b: right, right (with a miss_func turn)
    rows = [turn(0, True), turn(1, False), turn(2, True), turn(0, True, ("miss_func",), "b"), turn(1, True, traj="b")]
    metrics = {(m.metric, m.kind): (m.value, m.n) for m in compute_metrics(rows, ["m"])}
    assert metrics["turn_accuracy", "all"] == (0.8, 5)
    assert metrics["episode_success", "all"] == (0.5, 2)
    assert metrics["progress_rate", "all"] == ((1 / 3 + 1.0) / 2, 2)
    assert metrics["episode_success", "miss_func"] == (1.0, 1) and metrics["turn_accuracy", "miss_func"] == (1.0, 1)
    assert metrics["episode_success", "base"] == (0.0, 1) and metrics["turn_accuracy", "base"] == (2 / 3, 3)
    assert metrics["error_type_5", "all"] == (1.0, 5)


def test_references_prefer_the_heldout_split_and_are_capped_deterministically():
    pairs = [navigation_episode(seed=7 + i, episode_id=f"ep-{i}") for i in range(5)]
    rows = [t.model_copy(update={"traj_id": f"traj-{i}"}) for i, (_, t) in enumerate(pairs)] + [single_turn_trajectory()]
    frame = to_frame(rows, Trajectory).with_columns(split=pl.Series(["heldout", "heldout", "heldout", "train", "train", "heldout"]))
    episodes = [e for e, _ in pairs]
    refs, split, notes = evaluation_references(frame, episodes, limit=2, seed=0)
    assert split == "heldout" and len(refs) == 2 and {r.trajectory.traj_id for r in refs} <= {"traj-0", "traj-1", "traj-2"}
    assert [r.trajectory.traj_id for r in evaluation_references(frame, episodes, limit=2, seed=0)[0]] == [
        r.trajectory.traj_id for r in refs
    ]
    assert any("2 of 3" in n for n in notes)
    refs, split, notes = evaluation_references(frame.with_columns(split=pl.lit("train")), episodes, limit=10)
    assert split == "train" and len(refs) == 5 and any("no held-out" in n for n in notes)


def small_home(home, checkpoints=("base", "sft")) -> None:
    """Two held-out navigation episodes and untrained tiny checkpoints where training puts them."""
    from magnet_lib.training.base_models import build_tiny

    pairs = [navigation_episode(seed=7 + i, episode_id=f"ep-{i}") for i in range(2)]
    storage = home / "storage"
    (storage / "query_call_pairs").mkdir(parents=True)
    to_frame([e for e, _ in pairs], Episode).write_parquet(storage / "query_call_pairs" / "navigation.parquet")
    to_frame([t.model_copy(update={"traj_id": f"traj-{i}"}) for i, (_, t) in enumerate(pairs)], Trajectory).with_columns(
        split=pl.lit("heldout")
    ).write_parquet(storage / "sft_set.parquet")
    model, tok = build_tiny([{"messages": pairs[0][1].messages, "tools": pairs[0][1].tools}])
    for name in checkpoints:
        model.save_pretrained(home / "checkpoints" / name)
        tok.save_pretrained(home / "checkpoints" / name)


def test_eval_report_asset_on_a_small_home(dagster_harness, monkeypatch):
    """Fast: the checkpoints are the untrained tiny model; there is no mdpo checkpoint, so it
    is skipped with a note."""
    monkeypatch.setenv("MAGNET_TRAIN_STUDENT_MAX_NEW_TOKENS", "4")
    h = dagster_harness
    small_home(h.home)
    h.add_categories("navigation")

    result = h.materialize("eval_report")
    assert result.success
    meta = result.asset_materializations_for_node("eval_report")[0].metadata
    assert meta["episodes"].value == 2 and meta["split"].value == "heldout" and meta["models"].value == "base, sft"
    assert isinstance(meta["sft/turn_accuracy"].value, float) and "| model |" in meta["report"].value
    frame = h.table("eval_report")
    assert set(frame.columns) == {"model", "metric", "kind", "value", "n"}
    assert set(frame["model"]) == {"base", "sft"} and frame.filter(pl.col("metric") == "unusable")["value"].sum() > 0
    md = (h.home / "reports" / "eval_report.md").read_text()
    assert "## Turn accuracy by turn kind" in md and "mdpo: not evaluated" in md
    data = json.loads((h.home / "reports" / "eval_report.json").read_text())
    assert len(data["turns"]) == 2 * 2 * 4 and data["headline"]["sft/episode_success"] == 0.0


def test_a_function_added_after_miss_func_counts_as_offered_from_its_turn_on():
    episode, traj = navigation_episode()
    specs = {s["function"]["name"]: s for s in traj.tools}
    last_user = max(i for i, m in enumerate(traj.messages) if m["role"] == "user")
    traj = traj.model_copy(
        update={
            "tools": [s for name, s in specs.items() if name != "plan_route"],
            "tool_updates": [{"message_index": last_user, "tools": [specs["plan_route"]]}],
        }
    )
    ref = Reference(traj, episode)
    report = evaluate({"perfect": ScriptedStudent()}, [ref], POOL)
    assert all(t.correct for t in report.turns), [t.reason for t in report.turns if not t.correct]
    assert "plan_route" not in {s["function"]["name"] for s in judge_item(ref, 0, []).tools}
    assert "plan_route" in {s["function"]["name"] for s in judge_item(ref, 3, []).tools}


def test_magnet_eval_command(magnet_home, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from magnet_assets.cli import app

    monkeypatch.setenv("MAGNET_TRAIN_STUDENT_MAX_NEW_TOKENS", "4")
    small_home(magnet_home, checkpoints=("sft",))
    out = tmp_path / "reports"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--checkpoint",
            str(magnet_home / "checkpoints" / "sft"),
            "--episodes",
            "1",
            "--output",
            str(out),
            "--home",
            str(magnet_home),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "multi-turn evaluation: 1 heldout episodes" in result.output and "nested (1)" in result.output
    assert json.loads((out / "eval_report.json").read_text())["models"] == ["sft"]
    assert "wrote the report to" in result.output
    default = CliRunner().invoke(
        app, ["eval", "--checkpoint", str(magnet_home / "checkpoints" / "sft"), "--episodes", "1", "--home", str(magnet_home)]
    )
    assert default.exit_code == 0 and "wrote the report to" in default.output, default.output
    assert json.loads((magnet_home / "reports" / "eval_cli" / "eval_report.json").read_text())["models"] == ["sft"]
    missing = CliRunner().invoke(app, ["eval", "--home", str(tmp_path / "empty")])
    assert missing.exit_code == 1 and "magnet run" in missing.output


def test_a_served_model_judged_by_the_llm_judge(tmp_path):
    """Through the local test server (real HTTP, LiteLLM): the served student answers with the
    reference's message and the LLM judge with the offline rules' verdict."""
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.settings import LLMSettings
    from magnet_lib.testing.server import TestServer
    from magnet_lib.training.student import ServedStudent

    with TestServer() as server:
        settings = LLMSettings(model="openai/judge", api_base=server.url, api_key="sk-test")
        student = ServedStudent(TaskRunner(settings.model_copy(update={"model": "openai/student"}), cache_dir=tmp_path), temperature=0.0)
        report = evaluate({"served": student}, [reference()], POOL, TaskRunner(settings, cache_dir=tmp_path))
        assert server.by_task.get("judge_errors", 0) == 4 and server.by_task.get("student_step", 0) > 0
    assert report.judge == "openai/judge" and report.value("served", "episode_success") == 1.0
