"""Student sampling: turn by turn, calls executed for real, in process or through the LLM layer."""

from __future__ import annotations

import json

from magnet_lib.llm.runner import TaskRunner
from magnet_lib.settings import LLMSettings, load_settings
from magnet_lib.training.base_models import build_tiny
from magnet_lib.training.error_judge import split_turns, turn_calls
from magnet_lib.training.student import (
    ServedStudent,
    StudentStepTask,
    TransformersStudent,
    load_student,
    sample_episode,
)
from tests.training_support import navigation_episode, navigation_tools


def test_served_student_replays_the_episode_with_real_outputs(tmp_path):
    """A served student (the local test server answers with the reference's message) goes
    turn by turn; every call it makes is executed in a fresh world of the episode."""
    from magnet_lib.testing.server import TestServer

    episode, traj = navigation_episode()
    with TestServer() as server:
        runner = TaskRunner(LLMSettings(model="openai/student", api_base=server.url, api_key="sk-test"), cache_dir=tmp_path)
        student = ServedStudent(runner, max_new_tokens=64)
        samples = sample_episode(student, traj, navigation_tools(), episode.seed, 2, max_steps=4)
        assert server.by_task.get("student_step", 0) > 0
    assert [s.sample_index for s in samples] == [0, 1]
    for s in samples:
        assert len(s.turns) == 4 and s.messages[0] == traj.messages[0]
        _, ref_turns = split_turns(traj.messages)
        for t in s.turns:
            got, want = turn_calls(s.turn_messages(t.index)), turn_calls(ref_turns[t.index].responses)
            assert [r.call for r in got] == [r.call for r in want]
            assert [r.output for r in got] == [r.output for r in want]  # executed for real, same world
    # each sample is its own cache entry: a rerun is served from the cache
    offline_server = LLMSettings(model="openai/student", api_base="http://127.0.0.1:9", api_key="x", max_retries=0)
    again = sample_episode(
        ServedStudent(TaskRunner(offline_server, cache_dir=tmp_path), max_new_tokens=64),
        traj,
        navigation_tools(),
        episode.seed,
        2,
        max_steps=4,
    )
    assert [s.messages for s in again] == [s.messages for s in samples]


def test_hints_are_seen_but_not_recorded(tmp_path):
    from magnet_lib.testing.server import TestServer

    episode, traj = navigation_episode()
    seen = []

    class Recording(ServedStudent):
        def respond(self, requests):
            seen.extend(r.messages for r in requests)
            return super().respond(requests)

    with TestServer() as server:
        runner = TaskRunner(LLMSettings(model="openai/student", api_base=server.url, api_key="sk-test"), cache_dir=tmp_path)
        (s,) = sample_episode(
            Recording(runner),
            traj,
            navigation_tools(),
            episode.seed,
            1,
            hints={1: "[get_distance(origin_place_id='x')]"},
            replay_until=1,
            last_turn=1,
        )
    assert [t.index for t in s.turns] == [1] and s.turns[0].hinted
    assert any(m["content"].endswith("[Hint]: [get_distance(origin_place_id='x')]") for view in seen for m in view if m["role"] == "user")
    assert not any("[Hint]" in (m.get("content") or "") for m in s.messages)
    assert s.messages[: s.turns[0].start] == traj.messages[: s.turns[0].start]  # turn 0 is the reference's


def test_transformers_student_samples_and_stops_on_unusable_replies():
    episode, traj = navigation_episode()
    model, tok = build_tiny([{"messages": traj.messages, "tools": traj.tools}])
    student = TransformersStudent(model=model, tokenizer=tok, max_new_tokens=8, temperature=1.0)
    samples = sample_episode(student, traj, navigation_tools(), episode.seed, 3, max_steps=2)
    assert len(samples) == 3 and student.generated_tokens > 0
    for s in samples:
        last = s.turns[-1]
        assert all(not (t.truncated or t.malformed) for t in s.turns[:-1])
        assert len(s.turns) == 4 or last.truncated or last.malformed
        assert s.messages[last.start]["role"] == "user" and s.messages[last.end - 1]["role"] in ("assistant", "tool")


def test_load_student_picks_the_backend(magnet_home, monkeypatch):
    from magnet_lib.training.sft import effective_train

    settings = load_settings(train={"student_model": "hosted_vllm/magnet-sft", "student_api_base": "http://127.0.0.1:8000/v1"})
    student = load_student(settings)
    assert isinstance(student, ServedStudent) and student.name == "hosted_vllm/magnet-sft"
    assert student.runner.settings.api_base == "http://127.0.0.1:8000/v1"
    assert effective_train(load_settings()).student_max_new_tokens == 32  # CPU profile
    assert StudentStepTask().parse('Ok.<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>', None).calls[0].arguments == {
        "a": 1
    }
    assert (
        json.loads(
            json.dumps(
                StudentStepTask().render(StudentStepTask.input_model(messages=[{"role": "assistant", "content": None, "tool_calls": []}]))
            )
        )[0]["content"]
        == ""
    )
