"""Translation and distillation in LLM mode, through LiteLLM and real HTTP to the local test
server (which answers every task with ``answer_text`` of its offline output)."""

from __future__ import annotations

import pytest

from magnet_lib.distillation import distill
from magnet_lib.envs import builtin_environments
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.llm.testserver import TestServer
from magnet_lib.settings import LLMSettings, load_settings
from magnet_lib.single_turn import make_single_turn
from magnet_lib.translation import translate
from tests.translation_fixtures import navigation_fsps

TOOLS = builtin_environments()["navigation"].tools()


def _runner(server: TestServer, cache_dir) -> TaskRunner:
    settings = LLMSettings(model="openai/test", api_base=server.url, api_key="sk-test", timeout_s=5.0, concurrency=16)
    return TaskRunner(settings, cache_dir=cache_dir, backoff_base_s=0.02, backoff_max_s=0.2)


def _run(runner: TaskRunner):
    settings = load_settings()
    episodes = translate(navigation_fsps(), TOOLS, settings, runner)
    trajectories = [r.trajectory for r in distill(episodes, TOOLS, runner)]
    singles, _ = make_single_turn(TOOLS, {"single": 2, "parallel": 1, "multiple": 1, "irrelevance_no_fit": 1, "irrelevance_missing_value": 1}, settings, runner)
    return episodes, trajectories, singles


def _strip(items):
    return [i.model_dump(exclude={"generator"}) for i in items]


@pytest.fixture(scope="module")
def offline():
    return _run(TaskRunner(load_settings().llm))


def test_llm_mode_gives_the_offline_data_and_a_rerun_is_served_from_the_cache(tmp_path, offline):
    with TestServer() as server:
        runner = _runner(server, tmp_path / "cache")
        episodes, trajectories, singles = _run(runner)
        runner.close()
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
        rerun = _runner(server, tmp_path / "cache")
        again = _run(rerun)
        rerun.close()
        assert server.requests == 0, dict(server.by_task)
        assert _strip(again[0]) == _strip(episodes)
