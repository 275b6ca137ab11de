"""Translation and distillation in LLM mode, through LiteLLM and real HTTP to the local test
server (which answers every task with ``answer_text`` of its offline output)."""

from __future__ import annotations

import pytest

from magnet_lib.distillation.single_turn import make_single_turn
from magnet_lib.distillation.teacher import distill
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.settings import LLMSettings, load_settings
from magnet_lib.testing.server import TestServer
from magnet_lib.translation.episodes import translate
from tests.translation_fixtures import navigation_fsps

TOOLS = builtin_environments()["navigation"].tools()


def _runner(server: TestServer, cache_dir) -> TaskRunner:
    settings = LLMSettings(model="openai/test", api_base=server.url, api_key="sk-test", timeout_s=5.0, concurrency=16)
    return TaskRunner(settings, cache_dir=cache_dir, backoff_base_s=0.02, backoff_max_s=0.2)


def _run(runner: TaskRunner):
    settings = load_settings()
    episodes = translate(navigation_fsps(), TOOLS, settings, runner)
    trajectories = [r.trajectory for r in distill(episodes, TOOLS, runner)]
    singles, _ = make_single_turn(
        TOOLS, {"single": 2, "parallel": 1, "multiple": 1, "irrelevance_no_fit": 1, "irrelevance_missing_value": 1}, settings, runner
    )
    return episodes, trajectories, singles


def _strip(items):
    return [i.model_dump(exclude={"generator"}) for i in items]


@pytest.fixture(scope="module")
def offline():
    return _run(TaskRunner(load_settings().llm))


def test_llm_mode_gives_the_offline_data_and_a_rerun_is_served_from_the_cache(tmp_path, offline):
    with TestServer() as server:
        with _runner(server, tmp_path / "cache") as runner:
            episodes, trajectories, singles = _run(runner)
        assert all(e.status == "ok" and e.generator == "openai/test" for e in episodes)
        assert all(t.generator == "openai/test" for t in trajectories + singles)
        # the model answered what the offline implementation would: same data
        assert _strip(episodes) == _strip(offline[0])
        assert _strip(trajectories) == _strip(offline[1]) and _strip(singles) == _strip(offline[2])
        first = dict(server.by_task)
        turns = sum(len(e.turns) for e in episodes)
        assert first["back_translate"] >= turns and first["forth_translate"] >= turns - 2  # split turns have no calls
        assert first["teacher_turn"] > turns
        server.reset_counts()
        with _runner(server, tmp_path / "cache") as rerun:
            again = _run(rerun)
        assert server.requests == 0, dict(server.by_task)
        assert _strip(again[0]) == _strip(episodes)


# --------------------------------------------------------------------------- spec-only tools

SPEC_ONLY = [t.model_copy(update={"executable": False}) for t in builtin_environments()["travel"].tools()]


def _spec_only_run(runner: TaskRunner):
    from tests.translation_fixtures import augmented_for

    settings = load_settings()
    episodes = translate(augmented_for(SPEC_ONLY, settings)[:8], SPEC_ONLY, settings, runner)
    return episodes, [r.trajectory for r in distill(episodes, SPEC_ONLY, runner)]


def test_spec_only_outputs_come_from_the_model_cached_and_offline_without_requests(tmp_path):
    offline_runner = TaskRunner(load_settings().llm)
    offline = _spec_only_run(offline_runner)
    assert "simulate_tool_output" not in offline_runner.stats  # offline: the schema simulator alone
    assert sum(e.status == "ok" for e in offline[0]) >= 6
    with TestServer() as server:
        with _runner(server, tmp_path / "cache") as runner:
            episodes, trajectories = _spec_only_run(runner)
        calls = sum(len(t.calls) for e in episodes for t in e.turns)
        stats = runner.stats["simulate_tool_output"]
        # every output came from the model: a request, or the cached answer to the same request
        assert server.by_task["simulate_tool_output"] > 0 and stats.calls + stats.cache_hits >= calls > 0
        # the server answers with the offline implementation: the same outputs as offline
        assert _strip(episodes) == _strip(offline[0]) and _strip(trajectories) == _strip(offline[1])
        server.reset_counts()
        with _runner(server, tmp_path / "cache") as rerun:
            again = _spec_only_run(rerun)
        assert server.requests == 0, dict(server.by_task)
        assert _strip(again[0]) == _strip(episodes)


def test_an_output_the_model_cannot_simulate_falls_back_to_the_schema_simulator_with_a_note(tmp_path):
    offline = _spec_only_run(TaskRunner(load_settings().llm))[0]
    with TestServer() as server:
        server.script("invalid_answer", "invalid_answer", "invalid_answer", task="simulate_tool_output")  # first call + 2 re-asks
        with _runner(server, tmp_path / "cache") as runner:
            episodes, _ = _spec_only_run(runner)
    # translation's reject, and its replays from the cache (a retried turn, distillation)
    assert runner.stats["simulate_tool_output"].rejects >= 2
    noted = [e for e in episodes if e.notes]
    # (the same call in the same state may recur in a sibling variant of the walk: the cached reject answers it)
    assert noted and all("schema simulator answered" in e.notes[0] for e in noted)
    assert [e.model_dump(exclude={"generator", "notes"}) for e in episodes] == [
        e.model_dump(exclude={"generator", "notes"}) for e in offline
    ]
