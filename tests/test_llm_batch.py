"""Batch mode against the test server's fake OpenAI batch API (files + batches): the same
results, cache and accounting as online requests, faults retried in the next batch."""

from __future__ import annotations

import pytest

from magnet_lib.testing.server import TestServer
from tests.llm_server import echo, make_runner, words

BATCH = {"batch": True, "batch_window_s": 0.05, "batch_poll_s": 0.02}


@pytest.fixture
def batch_server():
    with TestServer(retry_after_s=0.05, batch_latency_s=0.1) as server:
        yield server


def test_a_batch_run_gives_every_result_and_the_cache_replays_it(batch_server, echo, tmp_path):
    runner = make_runner(batch_server, tmp_path / "cache", model="openai/gpt-4o-mini", **BATCH)
    results = runner.run(echo, words(20))
    assert [r.value.echo for r in results] == [f"w{i}" for i in range(20)]
    assert len(batch_server.batches) == 1 and batch_server.requests == 20
    stats = runner.stats["echo"]
    assert (stats.calls, stats.retries, stats.cache_hits) == (20, 0, 0)
    # the batch price of gpt-4o-mini (half the online one)
    assert stats.cost_usd == pytest.approx(stats.prompt_tokens * 0.075e-6 + stats.completion_tokens * 0.3e-6, rel=1e-6)
    for mode in (BATCH, {"batch": False}):  # a rerun, batched or not, is served from the cache
        again = make_runner(batch_server, tmp_path / "cache", model="openai/gpt-4o-mini", **mode)
        assert [r.value for r in again.run(echo, words(20))] == [r.value for r in results]
        assert again.stats["echo"].calls == 0 and again.stats["echo"].cache_hits == 20
    assert batch_server.requests == 20


def test_failed_lines_and_reasks_go_into_the_next_batch(batch_server, echo, tmp_path):
    batch_server.script("rate_limit", "server_error", "malformed", "hang", "invalid_answer")
    runner = make_runner(batch_server, tmp_path / "cache", **BATCH)
    results = runner.run(echo, words(8))
    assert all(r.ok for r in results) and [r.value.echo for r in results] == [f"w{i}" for i in range(8)]
    stats = runner.stats["echo"]
    assert stats.transport_errors == {"rate_limited": 1, "server_error": 2, "malformed_response": 1}  # hang: lost in the batch
    assert stats.reasks == 1 and stats.retries == 4
    assert stats.calls == batch_server.requests == 13
    assert len(batch_server.batches) >= 2  # the first, then the retries and the re-ask
    assert sum(r.retries for r in results) == 4 and sum(r.reasks for r in results) == 1


def test_a_line_failing_past_max_retries_becomes_a_reject(batch_server, echo, tmp_path):
    batch_server.script("server_error", "server_error", "server_error")
    runner = make_runner(batch_server, tmp_path / "cache", max_retries=2, **BATCH)
    [result] = runner.run(echo, words(1))
    assert not result.ok and "server_error after 3 attempts (max_retries=2)" in result.reject_reason
    assert len(batch_server.batches) == 3 and runner.stats["echo"].calls == 3


def test_batch_mode_for_another_provider_is_a_clear_reject(echo, tmp_path):
    runner = make_runner(None, tmp_path / "cache", model="gemini/gemini-2.0-flash", **BATCH)
    [result] = runner.run(echo, words(1))
    assert not result.ok and "batch mode supports OpenAI, OpenAI-compatible endpoints and Anthropic" in result.reject_reason
