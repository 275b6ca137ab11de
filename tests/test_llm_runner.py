"""The runner around the client: response cache, limits, sampling, per-task models, offline
path, accounting, and being called from threads and event loops."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import types

import pytest

from magnet_lib.llm import TaskRunner
from magnet_lib.llm.cache import ResponseCache
from magnet_lib.llm.client import TokenBucket
from magnet_lib.settings import LLMSettings
from magnet_lib.testing.server import TestServer
from tests.llm_server import (
    TEST_MODEL,
    echo,
    llm_server,
    make_echo,
    make_runner,
    words,
)

# --------------------------------------------------------------------------- cache


def test_rerun_is_served_from_the_cache_without_a_request(llm_server, echo, tmp_path):
    first = make_runner(llm_server, tmp_path / "cache").run(echo, words(12))
    assert llm_server.requests == 12
    rerun_runner = make_runner(llm_server, tmp_path / "cache")  # a new process would see the same
    again = rerun_runner.run(echo, words(12))
    assert llm_server.requests == 12
    assert [r.value for r in again] == [r.value for r in first]
    assert all(r.cached for r in again) and not any(r.cached for r in first)
    stats = rerun_runner.stats["echo"]
    assert (stats.calls, stats.cache_hits, stats.prompt_tokens) == (0, 12, 0)


def test_the_same_request_twice_at_once_is_sent_once(llm_server, echo, tmp_path):
    """Two items of a run rendering the same request get one answer: sent twice, a sampled
    model would answer each its own way while the cache keeps one, and a rerun would not
    give the first item what it got."""
    items = [words(1, "same")[0], words(1, "same")[0], *words(2, "other")]
    runner = make_runner(llm_server, tmp_path / "cache")
    first = runner.run(echo, items)
    assert llm_server.requests == 3  # "same0" once, "other0", "other1"
    assert first[0].value == first[1].value and all(r.ok for r in first)
    assert runner.stats["echo"].cache_hits == 1
    again = make_runner(llm_server, tmp_path / "cache").run(echo, items)
    assert [r.value for r in again] == [r.value for r in first] and llm_server.requests == 3


def test_cached_reask_replays_without_requests(llm_server, echo, tmp_path):
    llm_server.script("invalid_answer", None)
    [first] = make_runner(llm_server, tmp_path / "cache").run(echo, words(1))
    [again] = make_runner(llm_server, tmp_path / "cache").run(echo, words(1))
    assert llm_server.requests == 2
    assert again.value == first.value and again.reasks == 1 and again.cached


def test_transport_failures_are_not_cached(llm_server, echo, tmp_path):
    llm_server.script("server_error", "server_error")
    [failed] = make_runner(llm_server, tmp_path / "cache", max_retries=1).run(echo, words(1))
    assert not failed.ok
    [later] = make_runner(llm_server, tmp_path / "cache").run(echo, words(1))
    assert later.ok and not later.cached


def test_editing_one_template_invalidates_only_that_task(llm_server, tmp_path):
    prompts = tmp_path / "prompts"
    alpha, beta = make_echo(prompts, "alpha"), make_echo(prompts, "beta")
    cache = tmp_path / "cache"
    runner = make_runner(llm_server, cache)
    runner.run(alpha, words(5))
    runner.run(beta, words(5))
    assert dict(llm_server.by_task) == {"alpha": 5, "beta": 5}

    (prompts / "alpha.md").write_text((prompts / "alpha.md").read_text() + "Mind the spelling.\n")
    alpha, beta = make_echo(prompts, "alpha", (prompts / "alpha.md").read_text()), make_echo(prompts, "beta")
    llm_server.reset_counts()
    runner = make_runner(llm_server, cache)
    assert all(r.ok for r in runner.run(alpha, words(5)) + runner.run(beta, words(5)))
    assert dict(llm_server.by_task) == {"alpha": 5}
    assert runner.stats["beta"].cache_hits == 5 and runner.stats["alpha"].cache_hits == 0


def test_sampling_parameters_are_part_of_the_key(llm_server, echo, tmp_path):
    runner = make_runner(llm_server, tmp_path / "cache")
    runner.run(echo, words(2), temperature=0.0)
    runner.run(echo, words(2), temperature=0.0)
    assert llm_server.requests == 2
    runner.run(echo, words(2), temperature=1.0)
    assert llm_server.requests == 4


def test_samples_are_separate_entries(llm_server, echo, tmp_path):
    runner = make_runner(llm_server, tmp_path / "cache")
    samples = runner.run_samples(echo, words(2), n=3)
    assert [[s.sample_index for s in per_item] for per_item in samples] == [[0, 1, 2], [0, 1, 2]]
    assert all(s.value.echo == f"w{i}" for i, per_item in enumerate(samples) for s in per_item)
    assert llm_server.requests == 6
    assert ResponseCache(tmp_path / "cache").count("echo") == 6
    make_runner(llm_server, tmp_path / "cache").run_samples(echo, words(2), n=3)
    assert llm_server.requests == 6


def _hammer(cache_dir: str, worker: int, rows: int) -> None:
    cache = ResponseCache(cache_dir)
    for i in range(rows):
        key = f"{worker}-{i}"
        cache.put(key, task="t", task_version="v", model="m", text=key)
        assert cache.get(key).text == key
        cache.get(f"{1 - worker}-{i}")  # read what the other process writes


def test_cache_is_safe_for_several_processes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), w, 300)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert ResponseCache(tmp_path).count() == 600


def _open_at(cache_dir: str, start: float, worker: int) -> None:
    while time.time() < start:  # all processes open the fresh file at the same moment
        pass
    ResponseCache(cache_dir).put(f"k{worker}", task="t", task_version="v", model="m", text="x")


def test_processes_opening_a_fresh_cache_together_all_succeed(tmp_path):
    """Two first openers can get an immediate "database is locked" from the WAL switch; it is retried."""
    ctx = multiprocessing.get_context("fork")
    for trial in range(20):
        cache_dir = tmp_path / str(trial)
        start = time.time() + 0.2
        procs = [ctx.Process(target=_open_at, args=(str(cache_dir), start, w)) for w in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 8, f"trial {trial}"
        assert ResponseCache(cache_dir).count() == 8


# --------------------------------------------------------------------------- limits


def test_concurrency_bound_is_respected(tmp_path):
    prompts = tmp_path / "prompts"
    with TestServer(latency_s=0.1) as server:
        runner = make_runner(server, tmp_path / "cache", concurrency=4)
        results = runner.run(make_echo(prompts), words(24))
    assert all(r.ok for r in results)
    assert server.max_in_flight == 4


class FrozenClock:
    """The client's clock, moving only while a token bucket makes a request wait: what the
    buckets grant is then exact, however fast or loaded the machine is. ``grants`` records
    (clock, amount, bucket level after) for every acquire."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self.grants: list[tuple[float, float, float]] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        # a real clock always moves on; a float one must too (a bucket short by 1e-17 asks
        # for a 1e-17 s wait, which 0.3 + 1e-17 would not register)
        self.now += max(seconds, 1e-6)
        await asyncio.sleep(0)


@pytest.fixture
def frozen_clock(monkeypatch):
    from magnet_lib.llm import client

    clock = FrozenClock()
    monkeypatch.setattr(client, "time", clock)
    proxy = types.SimpleNamespace(**{k: getattr(asyncio, k) for k in dir(asyncio) if not k.startswith("__")})
    proxy.sleep = clock.sleep
    monkeypatch.setattr(client, "asyncio", proxy)
    acquire = TokenBucket.acquire

    async def recorded(self, amount: float = 1.0) -> float:
        waited = await acquire(self, amount)
        clock.grants.append((clock.now, amount, self.level))
        return waited

    monkeypatch.setattr(TokenBucket, "acquire", recorded)
    return clock


def test_requests_per_minute_limit_spreads_requests(llm_server, echo, tmp_path, frozen_clock):
    runner = make_runner(llm_server, tmp_path / "cache", requests_per_minute=1200)  # 20/s, burst 20
    assert all(r.ok for r in runner.run(echo, words(30)))
    grants = sorted(t for t, _, _ in frozen_clock.grants)
    assert len(grants) == 30 == llm_server.requests
    # by any moment t at most the burst plus 20/s have gone out: 10 requests waited >= 0.5 s
    assert all(i + 1 <= 20 + 20 * t + 1e-6 for i, t in enumerate(grants))
    assert grants.count(0.0) <= 20 and grants[-1] >= 0.5 - 1e-9


def test_token_bucket_waits_for_large_requests(frozen_clock):
    bucket = TokenBucket(per_minute=600, burst_s=1.0)  # 10 tokens/s, capacity 10

    async def take() -> list[float]:
        waits = [await bucket.acquire(10)]
        waits.append(await bucket.acquire(25))  # more than fits: waits for a full bucket, goes into debt
        assert bucket.level == pytest.approx(-15)
        waits.append(await bucket.acquire(1))  # the debt is paid before anything else goes out
        return waits

    assert asyncio.run(take()) == [0.0, pytest.approx(1.0), pytest.approx(1.6)]
    assert frozen_clock.now == pytest.approx(2.6) and bucket.level == pytest.approx(0.0, abs=1e-9)


def test_tokens_per_minute_limit_holds(llm_server, echo, tmp_path, frozen_clock):
    # each request reserves ~40 prompt tokens + max_tokens 60 = ~100; 6000/min = 100/s, burst 1000
    # answers take 0.5 s (real time), so no refund of an early answer makes room before all 14 asked
    llm_server.latency_s = 0.5
    runner = make_runner(llm_server, tmp_path / "cache", tokens_per_minute=6000, max_tokens=60)
    assert all(r.ok for r in runner.run(echo, words(14)))
    reserved = [amount for _, amount, _ in frozen_clock.grants]
    assert len(reserved) == 14 and sum(reserved) > 1000  # more than the burst at once
    assert frozen_clock.waits and frozen_clock.now > 0  # so some requests waited for the bucket
    assert all(level >= -1e-9 for _, _, level in frozen_clock.grants)  # and it was never overdrawn


# --------------------------------------------------------------------------- callers, models, offline


def test_run_works_from_a_thread_and_inside_an_event_loop(llm_server, echo, tmp_path):
    runner = make_runner(llm_server, tmp_path / "cache")
    out: list = []
    thread = threading.Thread(target=lambda: out.extend(runner.run(echo, words(3, "t"))))
    thread.start()
    thread.join(30)

    async def inside_a_loop():
        sync_results = runner.run(echo, words(3, "s"))  # sync call from async code still works
        async_results = await runner.arun(echo, words(3, "a"))
        return sync_results, async_results

    sync_results, async_results = asyncio.run(inside_a_loop())
    assert [r.value.echo for r in out + sync_results + async_results] == [
        *(f"t{i}" for i in range(3)),
        *(f"s{i}" for i in range(3)),
        *(f"a{i}" for i in range(3)),
    ]


def test_offline_without_a_model_makes_no_request(llm_server, echo, tmp_path):
    runner = TaskRunner(LLMSettings(model=None, api_base=llm_server.url), cache_dir=tmp_path / "cache")
    results = runner.run(echo, words(4))
    assert [r.value.echo for r in results] == ["w0", "w1", "w2", "w3"]
    assert all(r.generator == "offline" for r in results)
    assert llm_server.requests == 0
    assert runner.stats["echo"].offline_items == 4
    assert [len(s) for s in runner.run_samples(echo, words(2), n=3)] == [3, 3]


def test_per_task_model_override(llm_server, tmp_path):
    prompts = tmp_path / "prompts"
    judge, other = make_echo(prompts, "judge"), make_echo(prompts, "other")
    runner = make_runner(llm_server, tmp_path / "cache", model=None, task_models={"judge": "hosted_vllm/judge-model"})
    assert runner.model_for(judge) == "hosted_vllm/judge-model" and runner.model_for(other) is None
    [j] = runner.run(judge, words(1))
    [o] = runner.run(other, words(1))
    assert j.generator == "hosted_vllm/judge-model" and o.generator == "offline"
    assert [r.model for r in llm_server.records] == ["judge-model"]


def test_tokens_and_cost_are_accounted(llm_server, echo, tmp_path):
    # a model in LiteLLM's bundled price map, served by the local server: cost is computed offline
    runner = make_runner(llm_server, tmp_path / "cache", model="openai/gpt-4o-mini")
    runner.run(echo, words(5))
    stats = runner.stats["echo"]
    assert stats.calls == 5 and stats.prompt_tokens > 0 and stats.completion_tokens > 0
    assert 0 < stats.cost_usd < 0.01
    unknown = make_runner(llm_server, tmp_path / "cache2")
    unknown.run(echo, words(2))
    assert unknown.stats["echo"].cost_usd == 0.0  # no price known: 0, not a crash
    meta = runner.metadata()["echo"]
    assert meta["calls"] == 5 and meta["model"] == "openai/gpt-4o-mini"


def test_native_tool_calls_become_answer_text():
    import litellm

    from magnet_lib.llm.client import answer_text

    response = litellm.ModelResponse(
        choices=[
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
                }
            }
        ]
    )
    assert answer_text(response) == '{"content": null, "tool_calls": [{"name": "f", "arguments": {"a": 1}}]}'


def test_an_unexpected_failure_is_a_reject_not_a_crash(llm_server, echo, tmp_path):
    (tmp_path / "cache").write_text("not a folder")  # the cache cannot be opened
    runner = make_runner(llm_server, tmp_path / "cache")
    results = runner.run(echo, words(2, "x"))
    assert [r.ok for r in results] == [False, False]
    assert results[0].reject_reason.startswith("internal error in echo:")


def test_run_on_the_runners_own_loop_is_refused(llm_server, echo, tmp_path):
    import pytest

    from magnet_lib.llm.runner import run_sync

    runner = make_runner(llm_server, tmp_path / "cache")

    async def nested():
        return runner.run(echo, words(1))

    with pytest.raises(RuntimeError, match="await TaskRunner.arun instead"):
        run_sync(nested())


def test_retry_backoff_comes_from_the_settings_and_constructor_arguments_override_it():
    runner = TaskRunner(LLMSettings(model="openai/x", backoff_base_s=1.0, backoff_max_s=3.0, backoff_jitter=0.0))
    assert [runner.client.backoff(r) for r in range(4)] == [1.0, 2.0, 3.0, 3.0]
    jittered = TaskRunner(LLMSettings(model="openai/x", backoff_base_s=1.0, backoff_max_s=3.0, backoff_jitter=0.5)).client
    assert all(1.5 <= jittered.backoff(5) <= 3.0 for _ in range(50))
    fast = TaskRunner(LLMSettings(model="openai/x", backoff_jitter=0.0), backoff_base_s=0.01, backoff_max_s=0.02)
    assert fast.client.backoff(0) == 0.01 and fast.client.backoff(5) == 0.02
