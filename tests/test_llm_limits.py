"""The two transports (lean OpenAI-compatible path and LiteLLM) behind one interface, the
process-wide 429 cool-down, and adaptive concurrency. Real HTTP to the local test server."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from magnet_lib.llm import openai_path
from magnet_lib.llm.limits import AdaptiveLimiter, cooldown_for
from magnet_lib.llm.openai_path import OPENAI_BASE, lean_route, proxy_for, wire_params
from tests.llm_server import echo, llm_server, make_runner, words

# --------------------------------------------------------------------------- routing


def test_openai_shaped_models_take_the_lean_path_and_the_rest_litellm(monkeypatch):
    for var in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "HOSTED_VLLM_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    base = "http://127.0.0.1:8000/v1/"
    assert lean_route("openai/gpt-4o-mini", None) == (OPENAI_BASE, "gpt-4o-mini")
    assert lean_route("openai/gpt-4o-mini", base) == ("http://127.0.0.1:8000/v1", "gpt-4o-mini")
    assert lean_route("hosted_vllm/Qwen2.5-7B", base) == ("http://127.0.0.1:8000/v1", "Qwen2.5-7B")
    assert lean_route("hosted_vllm/Qwen2.5-7B", None) is None  # no endpoint known: LiteLLM decides
    assert lean_route("anthropic/claude-3-5-haiku", base) is None
    assert lean_route("gemini/gemini-2.0-flash", None) is None
    assert lean_route("openai/gpt-4o-mini", base, transport="litellm") is None
    # OpenAI itself gets its current parameter names; other endpoints get what was given
    assert wire_params(OPENAI_BASE, "o3-mini", {"max_tokens": 10, "temperature": 0.7}) == {"max_completion_tokens": 10}
    assert wire_params(base, "o3-mini", {"max_tokens": 10}) == {"max_tokens": 10}


def test_proxies_come_from_the_environment_once_per_endpoint(monkeypatch):
    monkeypatch.setattr(openai_path, "_PROXIES", {})
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    proxy, auth = proxy_for("https://api.openai.com/v1")
    assert str(proxy) == "http://proxy.example:3128" and auth.login == "user"
    assert proxy_for("http://127.0.0.1:8000/v1") == (None, None)  # NO_PROXY
    monkeypatch.delenv("HTTPS_PROXY")
    assert proxy_for("https://api.openai.com/v1")[0] is not None  # read once, kept for the endpoint


def test_the_lean_path_sends_without_a_thread_hop_per_request(llm_server, echo, tmp_path, monkeypatch):
    """With trust_env, aiohttp reads ~/.netrc and the proxy variables in a worker thread for
    every request; the lean path's session must not (those hops cost the next request's send)."""
    hops = []
    original = asyncio.base_events.BaseEventLoop.run_in_executor

    def counting(self, executor, func, *args):
        hops.append(getattr(func, "__name__", repr(func)))
        return original(self, executor, func, *args)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "run_in_executor", counting)
    runner = make_runner(llm_server, tmp_path / "cache", model="openai/gpt-4o-mini")
    assert all(r.ok for r in runner.run(echo, words(8)))
    assert llm_server.requests == 8
    assert not [h for h in hops if "netrc" in h or "proxy" in h], hops


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_both_transports_give_the_same_results_and_accounting(llm_server, echo, tmp_path, transport):
    llm_server.script("rate_limit", "server_error", "malformed", "invalid_answer")
    runner = make_runner(llm_server, tmp_path / "cache", model="openai/gpt-4o-mini", transport=transport, retry_budget_s=60)
    results = runner.run(echo, words(6))
    assert [r.value.echo for r in results] == [f"w{i}" for i in range(6)]
    stats = runner.stats["echo"]
    assert stats.calls == llm_server.requests == 10 and stats.retries == 3 and stats.reasks == 1
    assert stats.transport_errors == {"rate_limited": 1, "server_error": 1, "malformed_response": 1}
    assert stats.prompt_tokens > 0 and stats.completion_tokens > 0
    # the price of gpt-4o-mini from LiteLLM's map, per token, whichever way the request went
    assert stats.cost_usd == pytest.approx(stats.prompt_tokens * 0.15e-6 + stats.completion_tokens * 0.6e-6, rel=1e-6)
    assert (runner.client.route("openai/gpt-4o-mini") is None) == (transport == "litellm")
    assert all(r.model == "gpt-4o-mini" for r in llm_server.records)


def test_litellm_transport_classifies_a_hang_as_a_timeout(llm_server, echo, tmp_path):
    llm_server.script("hang", None)
    runner = make_runner(llm_server, tmp_path / "cache", transport="litellm", timeout_s=0.5)
    [result] = runner.run(echo, words(1))
    assert result.ok and runner.stats["echo"].transport_errors == {"timeout": 1}


# --------------------------------------------------------------------------- the 429 cool-down


def test_a_429_holds_every_request_to_that_model_for_the_retry_after(llm_server, echo, tmp_path):
    """Runner A gets a 429 (Retry-After 0.4 s); runner B, another client of the same model
    and endpoint started after it, sends nothing before the Retry-After has passed."""
    llm_server.script("rate_limit")
    first = make_runner(llm_server, tmp_path / "a")
    second = make_runner(llm_server, tmp_path / "b")
    out: list = []
    thread = threading.Thread(target=lambda: out.extend(first.run(echo, words(1, "a"))))
    thread.start()
    deadline = time.monotonic() + 10
    while not llm_server.faults["rate_limit"] and time.monotonic() < deadline:
        time.sleep(0.005)
    cooldown = cooldown_for(llm_server.url, "hosted_vllm/magnet-test")
    while not cooldown.pauses and time.monotonic() < deadline:  # the client has read the 429
        time.sleep(0.005)
    [b] = second.run(echo, words(1, "b"))
    thread.join(10)
    assert out[0].ok and b.ok
    limited = next(r for r in llm_server.records if r.fault == "rate_limit")
    later = [r for r in llm_server.records if r is not limited]
    assert len(later) == 2 and all(r.at >= limited.at + llm_server.retry_after_s for r in later)
    assert second.stats["echo"].transport_errors == {}  # B waited; it did not get a 429 of its own
    assert cooldown.pauses == 1


def test_the_cool_down_is_per_model_and_endpoint():
    a, b = cooldown_for("http://x/v1", "m1"), cooldown_for("http://x/v1", "m2")
    assert a is cooldown_for("http://x/v1", "m1") and a is not b and a is not cooldown_for("http://y/v1", "m1")
    a.pause(60)
    assert a.remaining() > 59 and b.remaining() == 0
    a.pause(1)  # an earlier end does not shorten it
    assert a.remaining() > 59


# --------------------------------------------------------------------------- adaptive concurrency


def test_limiter_halves_once_per_round_trip_and_grows_back():
    async def scenario():
        limiter = AdaptiveLimiter(8, minimum=2)
        tickets = [await limiter.acquire() for _ in range(8)]
        assert limiter.in_flight == 8
        for t in tickets[:3]:  # three 429s from requests sent before any cut: one cut
            limiter.release(t, overloaded=True)
        assert limiter.limit == 4 and limiter.decreases == 1
        for t in tickets[3:]:
            limiter.release(t, ok=True)
        t = await limiter.acquire()
        limiter.release(t, overloaded=True)  # sent after the cut: cuts again
        t = await limiter.acquire()
        limiter.release(t, overloaded=True)
        assert limiter.limit == 2  # the floor
        successes = 0
        while limiter.limit < 8:
            limiter.release(await limiter.acquire(), ok=True)
            successes += 1
        return limiter, successes

    limiter, successes = asyncio.run(scenario())
    assert limiter.limit == 8 and limiter.in_flight == 0
    assert 20 <= successes <= 40  # additive: about one slot per window of successes


def test_limiter_bounds_waiters_and_wakes_them_on_other_loops():
    limiter = AdaptiveLimiter(2, adaptive=False)
    peak = []

    async def worker(n: int):
        for _ in range(n):
            ticket = await limiter.acquire()
            peak.append(limiter.in_flight)
            await asyncio.sleep(0.001)
            limiter.release(ticket, ok=True)

    threads = [threading.Thread(target=lambda: asyncio.run(asyncio.wait_for(worker(30), 30))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(peak) == 90 and max(peak) <= 2 and limiter.in_flight == 0


def test_a_429_cuts_the_requests_in_flight_and_health_restores_them(echo, tmp_path):
    from magnet_lib.testing.server import TestServer

    with TestServer(latency_s=0.02, retry_after_s=0.05) as server:
        server.script("rate_limit")
        runner = make_runner(server, tmp_path / "cache", concurrency=8)
        results = runner.run(echo, words(60))
        limiter = runner.client.limiter
        assert all(r.ok for r in results)
        assert limiter.decreases == 1 and limiter.limit == 8  # halved once, then grown back
        assert server.requests == 61


def test_adaptive_concurrency_off_keeps_the_ceiling(llm_server, echo, tmp_path):
    llm_server.script("rate_limit")
    runner = make_runner(llm_server, tmp_path / "cache", adaptive_concurrency=False)
    assert all(r.ok for r in runner.run(echo, words(3)))
    assert runner.client.limiter.decreases == 0 and runner.client.limiter.limit == 16


# --------------------------------------------------------------------------- the cache's write-behind buffer


def test_write_behind_rows_are_readable_at_once_and_on_disk_after_flush(tmp_path):
    from magnet_lib.llm.cache import ResponseCache

    cache = ResponseCache(tmp_path, write_behind=True)
    cache.put("k1", task="t", task_version="v", model="m", text="one", prompt_tokens=3)
    assert cache.get("k1").text == "one" and cache.get("k1").prompt_tokens == 3  # served from the buffer
    other = ResponseCache(tmp_path)  # another process's view
    assert other.get("k1") is None
    cache.flush()
    assert other.get("k1").text == "one"
    for i in range(ResponseCache.FLUSH_ROWS):  # a full buffer writes itself
        cache.put(f"r{i}", task="t", task_version="v", model="m", text=str(i))
    assert other.count() == ResponseCache.FLUSH_ROWS + 1
    cache.close()
