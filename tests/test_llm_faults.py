"""Every fault the model endpoint can throw is survived, and each item's end state is checked:
a result, or a reject with its reason. Real HTTP to the local test server through LiteLLM."""

from __future__ import annotations

import asyncio
import socket
import types

import pytest

from magnet_lib.testing.server import TestServer
from tests.llm_server import (
    echo,
    llm_server,
    make_runner,
    words,
)


@pytest.fixture
def client_sleeps(monkeypatch) -> list[float]:
    """The seconds the client asks to sleep (between retries), recorded; the sleeps are real."""
    from magnet_lib.llm import client

    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(seconds)

    proxy = types.SimpleNamespace(**{k: getattr(asyncio, k) for k in dir(asyncio) if not k.startswith("__")})
    proxy.sleep = sleep
    monkeypatch.setattr(client, "asyncio", proxy)
    return sleeps


def test_rate_limit_waits_for_retry_after(llm_server, echo, tmp_path, client_sleeps):
    llm_server.script("rate_limit", None)
    runner = make_runner(llm_server, tmp_path / "cache")
    [result] = runner.run(echo, words(1))
    assert result.ok and result.value.echo == "w0"
    assert result.retries == 1
    first, second = llm_server.records
    assert first.fault == "rate_limit" and second.fault is None
    [wait] = client_sleeps
    assert llm_server.retry_after_s <= wait <= llm_server.retry_after_s + 1.0  # Retry-After honoured (plus jitter)
    stats = runner.stats["echo"]
    assert (stats.calls, stats.retries, stats.transport_errors) == (2, 1, {"rate_limited": 1})


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("server_error", "server_error"), ("malformed", "malformed_response"), ("hang", "timeout")],
)
def test_transient_fault_is_retried(llm_server, echo, tmp_path, fault, kind):
    llm_server.script(fault, fault, None)
    runner = make_runner(llm_server, tmp_path / "cache", timeout_s=0.5)
    [result] = runner.run(echo, words(1))
    assert result.ok and result.value.length == 2
    assert result.retries == 2
    assert llm_server.requests == 3
    assert runner.stats["echo"].transport_errors == {kind: 2}
    assert runner.stats["echo"].rejects == 0


def test_hang_is_cut_at_the_client_timeout(llm_server, echo, tmp_path):
    llm_server.script("hang", None)
    runner = make_runner(llm_server, tmp_path / "cache", timeout_s=0.5)
    [result] = runner.run(echo, words(1))
    assert result.ok
    first, second = llm_server.records
    assert first.fault == "hang" and second.fault is None and result.retries == 1
    # the client gave up on its own timeout: had it waited hang_s, the server's 504 would be a server_error
    assert runner.stats["echo"].transport_errors == {"timeout": 1}


def test_invalid_answer_is_reasked_with_the_error_shown(llm_server, echo, tmp_path):
    llm_server.script("invalid_answer", None)
    runner = make_runner(llm_server, tmp_path / "cache")
    [result] = runner.run(echo, words(1))
    assert result.ok and result.reasks == 1
    assert [r.messages for r in llm_server.records] == [2, 4]  # the re-ask carries answer + complaint
    assert runner.stats["echo"].reasks == 1


def test_reasks_exhausted_become_a_reject_with_reason(llm_server, echo, tmp_path):
    llm_server.script("invalid_answer", "invalid_answer", "invalid_answer")
    runner = make_runner(llm_server, tmp_path / "cache", max_reasks=2)
    [bad] = runner.run(echo, words(1))
    [good] = runner.run(echo, words(1, prefix="ok"))
    assert not bad.ok and bad.reject_reason.startswith("unparsable after 2 re-asks: no JSON value found")
    assert bad.answer == llm_server.invalid_answer
    assert good.ok
    stats = runner.stats["echo"]
    assert (stats.rejects, stats.reasks, stats.items) == (1, 2, 2)
    assert list(stats.reject_reasons.values()) == [1]


def test_retry_budget_spent_becomes_a_reject(llm_server, echo, tmp_path):
    llm_server.retry_after_s = 5.0
    llm_server.script("rate_limit")
    runner = make_runner(llm_server, tmp_path / "cache", retry_budget_s=1.0)
    [result] = runner.run(echo, words(1))
    assert not result.ok
    assert result.reject_reason.startswith("transport: rate_limited: retry budget of 1s spent after 1 attempts")
    assert llm_server.requests == 1


def test_max_retries_reached_becomes_a_reject(llm_server, echo, tmp_path):
    llm_server.script(*["server_error"] * 3)
    runner = make_runner(llm_server, tmp_path / "cache", max_retries=2)
    [result] = runner.run(echo, words(1))
    assert not result.ok and "server_error after 3 attempts (max_retries=2)" in result.reject_reason
    assert runner.stats["echo"].rejects == 1 and runner.stats["echo"].calls == 3


def test_connection_refused_is_retried_then_rejected(echo, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = make_runner(None, tmp_path / "cache", api_base=f"http://127.0.0.1:{port}/v1", max_retries=2)
    results = runner.run(echo, words(3))
    assert [r.ok for r in results] == [False] * 3
    assert all(r.reject_reason.startswith("transport: connection after 3 attempts") for r in results), results[0]
    assert runner.stats["echo"].calls == 9 and runner.stats["echo"].retries == 6


def test_random_faults_lose_no_item(echo, tmp_path):
    with TestServer(fault_rate=0.3, retry_after_s=0.1, hang_s=5, seed=7) as server:
        runner = make_runner(server, tmp_path / "cache", timeout_s=0.5, max_retries=8)
        results = runner.run(echo, words(60))
    assert len(results) == 60
    assert all(r.ok or r.reject_reason for r in results)
    assert [r.value.echo for r in results if r.ok] == [f"w{i}" for i, r in enumerate(results) if r.ok]
    assert sum(r.ok for r in results) >= 58
    assert sum(server.faults.values()) >= 10
    stats = runner.stats["echo"]
    assert stats.items == 60 and stats.calls == server.requests
