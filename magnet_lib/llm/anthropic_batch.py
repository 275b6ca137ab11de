"""Batch mode for Anthropic: its Message Batches API.

``anthropic/<model>`` with ``LLMSettings.batch = True``: the queued requests of a run (see
:mod:`magnet_lib.llm.batch` for the queueing, retries and accounting, which are the same for
every provider) become one Message Batch:

1. ``POST {base}/v1/messages/batches`` with ``{"requests": [{"custom_id", "params"}]}``, each
   ``params`` a Messages API request converted from the chat request (:func:`to_anthropic`);
2. ``GET /v1/messages/batches/{id}`` every ``batch_poll_s`` until ``processing_status`` is
   ``ended`` (cancelled after ``batch_timeout_s``);
3. the JSONL at the batch's ``results_url``: one ``{"custom_id", "result"}`` a request, where
   ``result.type`` is ``succeeded`` (a Message), ``errored`` (an error object), ``canceled`` or
   ``expired``.

A succeeded Message is handed back as an OpenAI chat completion body (:func:`to_completion`),
so the client reads its text, tool calls, usage and price exactly as it reads OpenAI's.
Failures become the exceptions the client classifies (:func:`outcome`): ``rate_limit_error``
a 429, ``overloaded_error`` a 529 and ``api_error`` a 500 (retried into the next batch),
``invalid_request_error`` and the other client errors a 4xx (a reject with Anthropic's
reason), ``expired`` / ``canceled`` a 503 (retried within ``max_retries``).

Plain aiohttp (the lean path's session and proxy lookup) rather than the ``anthropic`` SDK:
the SDK's current major version speaks API version ``2026-10-21`` with bearer auth, a request
contract without ``temperature`` / ``top_p`` / ``top_k``, while the online requests (LiteLLM)
speak ``2023-06-01`` with ``x-api-key``; batch and online requests must mean the same, and the
Batches API is four JSON calls (create, poll, cancel, download). The control calls retry a
few times on their own (429/5xx, timeouts); the key travels in the ``x-api-key`` header of
each call, never in a log line, an error message or the cache.

Where it goes: ``api_base`` as for LiteLLM's online requests (which post to
``{api_base}/v1/messages``), else ``ANTHROPIC_API_BASE`` / ``ANTHROPIC_BASE_URL``, else
``https://api.anthropic.com``. The key: ``api_key``, else ``ANTHROPIC_API_KEY`` (read, never set).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import magnet_lib.llm.openai_path as openai_path
from magnet_lib.llm.batch import BatchQueue, _Entry
from magnet_lib.llm.openai_path import HTTPStatusError, MalformedResponse

log = logging.getLogger("magnet.llm")

ANTHROPIC_BASE = "https://api.anthropic.com"
#: the API version sent: the one LiteLLM sends online, so batch and online requests mean the
#: same (2026-10-21, the newest SDK's default, removes ``temperature``, ``top_p`` and ``top_k``)
ANTHROPIC_VERSION = "2023-06-01"
#: control calls retried on these statuses
RETRIED = (408, 409, 429, 500, 502, 503, 504, 529)
#: the tool a ``response_format`` schema becomes (the name LiteLLM uses online)
JSON_TOOL = "json_tool_call"
#: Anthropic error types -> the HTTP status they come with (what the client classifies)
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
#: chat parameters with no Anthropic meaning, left out as LiteLLM's ``drop_params`` does online
_DROPPED = {"n", "seed", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias", "user", "stream"}


def base_url(api_base: str | None) -> str:
    """The root the SDK appends ``/v1/messages/batches`` to."""
    base = api_base or os.environ.get("ANTHROPIC_API_BASE") or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_BASE
    base = base.rstrip("/")
    return base[: -len("/v1/messages")] if base.endswith("/v1/messages") else base


def resolve_key(api_key: str | None) -> str | None:
    return api_key or os.environ.get("ANTHROPIC_API_KEY")


# --------------------------------------------------------------------------- requests


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """A chat message's content as Anthropic content blocks (text only; empty text dropped,
    Anthropic rejects empty text blocks)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                if part.get("text"):
                    out.append({"type": "text", "text": str(part["text"])})
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ValueError(f"{where}: content part of type {kind!r} is not supported in Anthropic batch mode (text only)")
        return out
    raise ValueError(f"{where}: content must be a string or a list of text parts, got {type(content).__name__}")


def _add(turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]) -> None:
    """Append a turn, merging it into the previous one of the same role (a run of ``tool``
    messages becomes one user turn of tool results, as Anthropic requires)."""
    if turns and turns[-1]["role"] == role:
        previous = turns[-1]["content"]
        as_blocks = [{"type": "text", "text": previous}] if isinstance(previous, str) else previous
        turns[-1]["content"] = as_blocks + ([{"type": "text", "text": content}] if isinstance(content, str) else content)
    else:
        turns.append({"role": role, "content": content})


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return {"arguments": raw}
    return raw if isinstance(raw, dict) else {}


def _tool(spec: dict[str, Any]) -> dict[str, Any]:
    fn = spec.get("function", spec) if isinstance(spec, dict) else {}
    if not isinstance(fn, dict) or not fn.get("name"):
        raise ValueError(f"a tool without a name cannot be sent to Anthropic: {json.dumps(spec)[:200]}")
    tool = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        tool["description"] = fn["description"]
    return tool


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None and parallel is None:
        return None
    if choice in (None, "auto"):
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise ValueError(f"tool_choice {choice!r} has no Anthropic equivalent")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def to_anthropic(name: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """The Messages API ``params`` of one chat request: system messages to ``system``, user and
    assistant turns as they are (a re-ask's answer and complaint included), assistant tool calls
    to ``tool_use`` blocks and ``tool`` messages to ``tool_result`` blocks; ``max_tokens``,
    ``temperature``, ``top_p``, ``stop``, ``tools`` and ``tool_choice`` mapped; a
    ``response_format`` schema becomes a forced tool (:data:`JSON_TOOL`) whose input is the answer."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        role = m.get("role")
        where = f"message {i} ({role})"
        if role in ("system", "developer"):
            system.extend(_blocks(m.get("content"), where))
        elif role == "user":
            content = m.get("content")
            _add(turns, "user", content if isinstance(content, str) else _blocks(content, where))
        elif role == "assistant":
            content = m.get("content")
            calls = m.get("tool_calls") or []
            if isinstance(content, str) and content and not calls:
                _add(turns, "assistant", content)
                continue
            blocks = _blocks(content, where)
            if not blocks and not calls:
                continue  # an empty answer (re-asked): Anthropic refuses empty turns; the complaint joins the prompt
            for j, call in enumerate(calls):
                fn = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id") or f"toolu_{i}_{j}",
                        "name": fn.get("name"),
                        "input": _arguments(fn.get("arguments")),
                    }
                )
            _add(turns, "assistant", blocks)
        elif role == "tool":
            result = m.get("content")
            text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
            _add(turns, "user", [{"type": "tool_result", "tool_use_id": m.get("tool_call_id"), "content": text}])
        else:
            raise ValueError(f"{where}: the role {role!r} has no Anthropic equivalent")
    out: dict[str, Any] = {
        "model": name,
        "max_tokens": int(params.get("max_tokens") or params.get("max_completion_tokens") or 4096),
        "messages": turns,
    }
    if system:
        out["system"] = system
    for key in ("temperature", "top_p", "top_k"):
        if params.get(key) is not None:
            out[key] = params[key]
    stop = params.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = [_tool(t) for t in params.get("tools") or []]
    choice = _tool_choice(params.get("tool_choice"), params.get("parallel_tool_calls"))
    schema = _schema(params.get("response_format"))
    if schema is not None:
        tools.append({"name": JSON_TOOL, "input_schema": schema})
        choice = {"type": "tool", "name": JSON_TOOL}
    if tools:
        out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    known = {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    }
    dropped = sorted(set(params) - known - _DROPPED)
    if dropped:
        log.debug("anthropic batch: parameters without an Anthropic equivalent left out: %s", ", ".join(dropped))
    return out


def _schema(response_format: Any) -> dict[str, Any] | None:
    """The JSON Schema of a ``response_format`` (``json_schema`` or llama.cpp-style ``json_object``)."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    elif response_format.get("type") == "json_object":
        schema = response_format.get("schema") or {"type": "object", "additionalProperties": True, "properties": {}}
    else:
        return None
    return schema if isinstance(schema, dict) else None


# --------------------------------------------------------------------------- results


def to_completion(message: Any, json_mode: bool = False) -> dict[str, Any]:
    """An Anthropic Message as an OpenAI chat completion body: the text blocks joined, the
    ``tool_use`` blocks as ``tool_calls`` (arguments as JSON, as LiteLLM returns them online),
    and with ``json_mode`` the input of the :data:`JSON_TOOL` call as the text."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise MalformedResponse("the batch result is not a message with content blocks")
    text = "".join(str(b.get("text") or "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    calls = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
    if json_mode:
        answer = next((b for b in calls if b.get("name") == JSON_TOOL), None)
        if answer is not None:
            calls = [b for b in calls if b is not answer]
            text = json.dumps(answer.get("input"))
    reply: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        reply["tool_calls"] = [
            {"id": b.get("id"), "type": "function", "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})}}
            for b in calls
        ]
    elif reply["content"] is None:
        reply["content"] = ""
    usage = message.get("usage") or {}
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "model": message.get("model"),
        "choices": [{"index": 0, "message": reply, "finish_reason": message.get("stop_reason")}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def outcome(result: Any, json_mode: bool = False) -> Any:
    """A completion body, or the exception the client classifies, for one ``result``."""
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded":
        try:
            return to_completion(result.get("message"), json_mode)
        except MalformedResponse as exc:
            return exc
    if kind == "errored":
        error = result.get("error") or {}
        inner = error.get("error") if isinstance(error.get("error"), dict) else error
        etype = str(inner.get("type") or "api_error")
        message = str(inner.get("message") or etype)[:300]
        return HTTPStatusError(ERROR_STATUS.get(etype, 500), f"{etype}: {message}")
    if kind in ("expired", "canceled"):
        return HTTPStatusError(503, f"the batch request was {kind} before it was processed")
    return MalformedResponse(f"the batch result has an unknown type {kind!r}")


def _error_message(payload: bytes) -> str:
    text = payload[:300].decode("utf-8", "replace")
    try:
        error = json.loads(payload).get("error")
        if isinstance(error, dict) and error.get("message"):
            text = f"{error.get('type')}: {error['message']}"
    except (ValueError, AttributeError):
        pass
    return text[:300]


@dataclass(kw_only=True)
class AnthropicBatches(BatchQueue):
    """Anthropic's Message Batches API over the lean path's aiohttp session."""

    base: str
    max_bytes: int = 240_000_000  # Anthropic: 256 MB and 100,000 requests a batch at most
    control_retries: int = 3

    def line(self, custom_id: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": custom_id, "params": to_anthropic(self.name, messages, params)}

    async def _call(self, method: str, url: str, body: Any = None, *, retry_on: tuple[int, ...] = RETRIED, download: bool = False) -> Any:
        """One control call (create, poll, cancel, download) with a few retries of its own: on
        429/5xx (``retry_on``), timeouts and dropped connections, waiting the ``Retry-After`` or
        0.5, 1, 2 s. The requests inside a batch are retried (and counted) by the model client."""
        import aiohttp

        if not self.key:
            raise ValueError("no Anthropic API key: set llm.api_key (MAGNET_LLM_API_KEY) or ANTHROPIC_API_KEY")
        headers = {"x-api-key": self.key, "anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
        proxy, proxy_auth = openai_path.proxy_for(self.base)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        # a results file may be large: no total limit for the download, only between reads
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300) if download else aiohttp.ClientTimeout(total=120)
        for attempt in range(self.control_retries + 1):
            retry_after = None
            try:
                async with openai_path.session().request(
                    method, url, data=data, headers=headers, proxy=proxy, proxy_auth=proxy_auth, timeout=timeout
                ) as response:
                    payload = await response.read()
                    status, response_headers = response.status, response.headers
            except TimeoutError as exc:  # aiohttp's timeouts are both
                failure: BaseException = TimeoutError(f"{method} {url}: no answer in time ({type(exc).__name__})")
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                failure = ConnectionError(f"{type(exc).__name__}: {exc}")
            else:
                if status == 200:
                    if download:
                        return payload
                    try:
                        return json.loads(payload)
                    except ValueError as exc:
                        raise MalformedResponse(f"{method} {url}: the answer is not JSON: {exc}") from None
                failure = HTTPStatusError(status, _error_message(payload), response_headers)
                if status not in retry_on:
                    raise failure
                with contextlib.suppress(TypeError, ValueError):
                    retry_after = float(response_headers.get("retry-after"))
            if attempt == self.control_retries:
                raise failure
            wait = retry_after if retry_after is not None else 0.5 * 2**attempt
            log.debug("anthropic batch: %s %s failed (%s), retrying in %.1fs", method, url, type(failure).__name__, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _batch(self, entries: list[_Entry]) -> dict[str, Any]:
        json_mode = {e.custom_id for e in entries if (e.line["params"].get("tool_choice") or {}).get("name") == JSON_TOOL}
        # a create that failed with 429 or 529 was not processed: safe to send again; after
        # other failures its requests go back to the client (which may retry them, counted)
        batch = await self._call("POST", f"{self.base}/v1/messages/batches", {"requests": [e.line for e in entries]}, retry_on=(429, 529))
        batch_id = str(batch.get("id"))
        self.submitted.append(batch_id)
        log.info("anthropic batch %s: %d requests submitted", batch_id, len(entries))
        deadline = time.monotonic() + self.timeout_s
        while batch.get("processing_status") != "ended":
            if time.monotonic() > deadline:
                with contextlib.suppress(Exception):  # best effort; its requests are retried either way
                    await self._call("POST", f"{self.base}/v1/messages/batches/{batch_id}/cancel", {}, retry_on=())
                raise TimeoutError(f"batch {batch_id} not ended after {self.timeout_s:g}s")
            await asyncio.sleep(self.poll_s)
            batch = await self._call("GET", f"{self.base}/v1/messages/batches/{batch_id}")
        log.info("anthropic batch %s: ended %s", batch_id, json.dumps(batch.get("request_counts")))
        url = batch.get("results_url") or f"{self.base}/v1/messages/batches/{batch_id}/results"
        results: dict[str, Any] = {}
        for raw in (await self._call("GET", url, download=True)).decode("utf-8").splitlines():
            if raw.strip():
                line = json.loads(raw)
                custom_id = line.get("custom_id")
                results[custom_id] = outcome(line.get("result"), custom_id in json_mode)
        return results
