"""Anthropic batch mode against the test server's fake Messages and Message Batches APIs: the
same results, cache and accounting as online requests (LiteLLM to ``/v1/messages``), faults
retried into the next batch, invalid requests rejected with Anthropic's reason."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from magnet_lib.llm import ParseError
from magnet_lib.llm.anthropic_batch import JSON_TOOL, base_url, outcome, to_anthropic, to_completion
from magnet_lib.llm.openai_path import answer_text, prices
from magnet_lib.testing.server import TestServer
from tests.llm_server import EchoIn, EchoOut, EchoTask, echo, make_echo, make_runner, words

MODEL = "anthropic/claude-haiku-4-5"  # in LiteLLM's price map: $1 / $5 per million tokens, no batch prices
BATCH = {"batch": True, "batch_window_s": 0.05, "batch_poll_s": 0.02}

TOOL = {
    "type": "function",
    "function": {
        "name": "echo_word",
        "description": "Repeat a word",
        "parameters": {"type": "object", "properties": {"echo": {"type": "string"}, "length": {"type": "integer"}}},
    },
}


class ToolEcho(EchoTask):
    """The echo task answered with a native tool call (as BFCL's function-calling style is)."""

    name: ClassVar[str] = "tool_echo"
    template: ClassVar[str] = "tool_echo.md"
    tool_name = "echo_word"

    def request_params(self, item: EchoIn) -> dict[str, Any]:
        return {"tools": [{**TOOL, "function": {**TOOL["function"], "name": self.tool_name}}]}

    def response_schema(self, item: EchoIn) -> None:
        return None

    def answer_text(self, output: EchoOut) -> str:
        return json.dumps({"content": None, "tool_calls": [{"name": self.tool_name, "arguments": output.model_dump()}]})

    def parse(self, text: str, item: EchoIn) -> EchoOut:
        data = json.loads(text)
        calls = data.get("tool_calls") if isinstance(data, dict) else None
        if not calls:
            raise ParseError("call the tool")
        return super().parse(json.dumps(calls[0]["arguments"]), item)


def tool_echo(tmp_path, tool_name: str = "echo_word") -> ToolEcho:
    base = make_echo(tmp_path / "tool_prompts", "tool_echo")
    task = ToolEcho(base.prompts_dir)
    task.tool_name = tool_name
    return task


@pytest.fixture
def server():
    with TestServer(retry_after_s=0.05, batch_latency_s=0.1) as s:
        yield s


def anthropic_runner(server: TestServer, cache_dir, **overrides: Any):
    values: dict[str, Any] = {"model": MODEL, "api_base": server.root, "structured_outputs": "off"}
    values.update(overrides)
    return make_runner(server, cache_dir, **values)


def test_a_batch_run_matches_the_online_run_and_the_cache_replays_it(server, echo, tmp_path):
    """Online (LiteLLM, /v1/messages) and batch runs of the same items: the same answers, the
    same tokens, half the price; text answers and native tool calls alike; then the cache serves
    both modes without a request."""
    tools = tool_echo(tmp_path)
    online = anthropic_runner(server, tmp_path / "online")
    online_results = online.run(echo, words(12)) + online.run(tools, words(4))
    assert server.requests == 16 and not server.message_batches

    batched = anthropic_runner(server, tmp_path / "batch", **BATCH)
    batch_results = batched.run(echo, words(12)) + batched.run(tools, words(4))
    assert len(server.message_batches) == 2 and server.requests == 32  # one batch a run
    assert set(server.anthropic_versions) == {"2023-06-01"}  # online (LiteLLM) and batch calls speak the same version
    assert all(r.ok for r in batch_results)
    assert [r.value for r in batch_results] == [r.value for r in online_results]
    assert [r.answer for r in batch_results] == [r.answer for r in online_results]  # the same text, tool calls included
    assert json.loads(batch_results[-1].answer) == {
        "content": None,
        "tool_calls": [{"name": "echo_word", "arguments": {"echo": "w3", "length": 2}}],
    }

    prompt, completion, batch_prompt, batch_completion = prices(MODEL)
    assert (prompt, completion) == (1e-6, 5e-6) and (batch_prompt, batch_completion) == (0.5e-6, 2.5e-6)
    for name in ("echo", "tool_echo"):
        a, b = online.stats[name], batched.stats[name]
        assert (b.calls, b.retries, b.reasks, b.rejects) == (a.calls, a.retries, a.reasks, a.rejects)
        assert (b.prompt_tokens, b.completion_tokens) == (a.prompt_tokens, a.completion_tokens) and a.prompt_tokens > 0
        assert a.cost_usd == pytest.approx(a.prompt_tokens * prompt + a.completion_tokens * completion)
        assert b.cost_usd == pytest.approx(a.cost_usd / 2)

    for mode in (BATCH, {"batch": False}):  # a rerun, batched or not, is served from the batch run's cache
        again = anthropic_runner(server, tmp_path / "batch", **mode)
        assert [r.value for r in again.run(echo, words(12))] == [r.value for r in batch_results[:12]]
        assert again.stats["echo"].calls == 0 and again.stats["echo"].cache_hits == 12
    assert server.requests == 32 and len(server.message_batches) == 2


def test_structured_outputs_become_a_forced_tool_whose_input_is_the_answer(server, echo, tmp_path):
    runner = anthropic_runner(server, tmp_path / "cache", structured_outputs="json_schema", **BATCH)
    results = runner.run(echo, words(3))
    assert all(r.ok for r in results) and [r.value.echo for r in results] == ["w0", "w1", "w2"]
    assert json.loads(results[0].answer) == {"echo": "w0", "length": 2} and runner.stats["echo"].reasks == 0
    [batch] = server.message_batches.values()
    assert all(line["result"]["message"]["content"][0]["type"] == "tool_use" for line in batch["results"])


def test_failed_lines_and_reasks_go_into_the_next_batch(server, echo, tmp_path):
    server.script("rate_limit", "overloaded", "server_error", "hang", "canceled", "malformed", "invalid_answer")
    runner = anthropic_runner(server, tmp_path / "cache", **BATCH)
    results = runner.run(echo, words(8))
    assert all(r.ok for r in results) and [r.value.echo for r in results] == [f"w{i}" for i in range(8)]
    stats = runner.stats["echo"]
    # 529 overloaded, 500 api_error, the expired and the canceled line (503): server errors
    assert stats.transport_errors == {"rate_limited": 1, "server_error": 4, "malformed_response": 1}
    assert stats.reasks == 1 and stats.retries == 6 and stats.rejects == 0
    assert stats.calls == server.requests == 15
    assert len(server.message_batches) >= 2  # the first, then the retries and the re-ask
    assert sum(r.retries for r in results) == 6 and sum(r.reasks for r in results) == 1
    # the re-ask went into a later batch: the system prompt, then the rejected answer and the complaint as its last turns
    first, *later = server.message_batches.values()
    reasks = [r["params"] for b in later for r in b["requests"] if len(r["params"]["messages"]) == 3]
    assert len(reasks) == 1 and all(len(r["params"]["messages"]) == 1 for r in first["requests"])
    [reask] = reasks
    assert [m["role"] for m in reask["messages"]] == ["user", "assistant", "user"] and reask["system"][0]["text"].startswith(
        "You repeat words"
    )
    assert reask["messages"][1]["content"] == server.invalid_answer and "JSON" in reask["messages"][2]["content"]


def test_a_line_failing_past_max_retries_becomes_a_reject(server, echo, tmp_path):
    server.script("overloaded", "overloaded", "overloaded")
    runner = anthropic_runner(server, tmp_path / "cache", max_retries=2, **BATCH)
    [result] = runner.run(echo, words(1))
    assert not result.ok and "server_error after 3 attempts (max_retries=2)" in result.reject_reason
    assert "overloaded_error" in result.reject_reason
    assert len(server.message_batches) == 3 and runner.stats["echo"].calls == 3


def test_an_invalid_request_is_a_reject_with_anthropics_reason(server, echo, tmp_path):
    server.script("invalid_request")
    runner = anthropic_runner(server, tmp_path / "cache", **BATCH)
    results = runner.run(echo, words(2))
    [bad] = [r for r in results if not r.ok]
    assert "request_error" in bad.reject_reason and "invalid_request_error: invalid request (scripted)" in bad.reject_reason
    assert bad.retries == 0 and sum(r.ok for r in results) == 1
    # a request Anthropic refuses as converted: a tool name with a space in it
    badly_named = tool_echo(tmp_path, tool_name="echo word")
    [refused] = anthropic_runner(server, tmp_path / "cache2", **BATCH).run(badly_named, words(1))
    assert not refused.ok and "tools.0.name: String should match pattern" in refused.reject_reason
    assert server.invalid_requests == ["tools.0.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"]


def test_a_missing_key_is_a_reject_that_says_so(server, echo, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    [result] = anthropic_runner(server, tmp_path / "cache", api_key=None, **BATCH).run(echo, words(1))
    assert not result.ok and "no Anthropic API key" in result.reject_reason and server.requests == 0


def test_chat_messages_convert_to_the_messages_api():
    messages = [
        {"role": "system", "content": "You call tools."},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
            {"id": "c2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
        {"role": "assistant", "content": "It is 18C at noon."},
        {"role": "user", "content": "Your answer must be JSON."},  # a re-ask's complaint
    ]  # fmt: skip
    params = {"temperature": 0.3, "max_tokens": 64, "tools": [TOOL], "tool_choice": "required", "stop": "END", "seed": 7}
    out = to_anthropic("claude-haiku-4-5", messages, params)
    assert out["system"] == [{"type": "text", "text": "You call tools."}, {"type": "text", "text": "Be brief."}]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "c2", "name": "time", "input": {}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "noon"},
    ]
    assert out["messages"][3:] == [
        {"role": "assistant", "content": "It is 18C at noon."},
        {"role": "user", "content": "Your answer must be JSON."},
    ]
    assert out["tools"] == [{"name": "echo_word", "input_schema": TOOL["function"]["parameters"], "description": "Repeat a word"}]
    assert (out["tool_choice"], out["stop_sequences"], out["temperature"], out["max_tokens"]) == ({"type": "any"}, ["END"], 0.3, 64)
    assert "seed" not in out and "response_format" not in out

    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}
    forced = to_anthropic("m", [{"role": "user", "content": "hi"}], {"max_tokens": 8, "response_format": fmt})
    assert forced["tools"] == [{"name": JSON_TOOL, "input_schema": schema}] and forced["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    empty = to_anthropic(
        "m", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "Say something."}], {}
    )
    assert empty["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "Say something."}]}]
    with pytest.raises(ValueError, match="image_url"):
        to_anthropic("m", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], {})


def test_results_convert_to_the_clients_answers():
    message = {
        "id": "msg_1", "model": "claude-haiku-4-5", "stop_reason": "tool_use", "usage": {"input_tokens": 11, "output_tokens": 7},
        "content": [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}],
    }  # fmt: skip
    body = to_completion(message)
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    text = answer_text(body["choices"][0]["message"])
    assert json.loads(text) == {"content": "Let me check.", "tool_calls": [{"name": "weather", "arguments": {"city": "Paris"}}]}
    forced = {"content": [{"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"x": 1}}], "usage": {}}
    assert answer_text(to_completion(forced, json_mode=True)["choices"][0]["message"]) == '{"x": 1}'
    errored = {"type": "errored", "error": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}}
    assert outcome(errored).status_code == 429 and "rate_limit_error: slow down" in str(outcome(errored))
    invalid = {"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}}
    assert outcome(invalid).status_code == 400
    assert outcome({"type": "expired"}).status_code == 503 and outcome({"type": "canceled"}).status_code == 503
    assert type(outcome({"type": "succeeded", "message": {"id": "m"}})).__name__ == "MalformedResponse"
    assert base_url("https://api.anthropic.com/v1/messages") == "https://api.anthropic.com"
