"""The lean path: chat completions to OpenAI and OpenAI-compatible endpoints over aiohttp.

LiteLLM spends about 3 ms of CPU per request (on this 2-core machine) on work a data run does not need (its logging
objects, callbacks, response-model conversion, a cost computation through several lookups),
and the ``openai`` SDK and plain ``httpx`` are worse at high concurrency: httpcore's connection
pool costs 12-17 ms of CPU per request with 128 connections in flight (measured on this
machine, see ``benchmarks/llm_vs_curator.py``). So for the models LiteLLM would send to an
OpenAI-shaped ``/chat/completions`` anyway, the client posts the request itself:

- ``openai/<model>`` (OpenAI itself, or any ``api_base``), ``hosted_vllm/<model>`` with an
  ``api_base``, and a bare model name with an ``api_base``;
- everything else (``anthropic/...``, ``gemini/...``, ``bedrock/...``, ...) goes through LiteLLM
  as before, with its model strings, parameter mapping and cost map.

``LLMSettings.transport`` chooses: ``auto`` (the rule above), ``litellm`` (always LiteLLM) or
``openai`` (always the lean path; the model must be OpenAI-shaped).

One aiohttp session per event loop, shared by every client of the process (connections are
reused across runners); the key travels per request in the ``Authorization`` header and never
lives in the session. Errors come out as the plain exceptions the client classifies:
:class:`HTTPStatusError` (status code and headers, so ``Retry-After`` is read), ``ConnectionError``,
``asyncio.TimeoutError`` and :class:`MalformedResponse`.

Cost: the same LiteLLM price map (``litellm.model_cost`` when LiteLLM is loaded, else the copy
bundled with it, read as JSON without importing LiteLLM), per token of prompt and completion.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import json
import os
import re
import sys
import threading
import weakref
from typing import Any

OPENAI_BASE = "https://api.openai.com/v1"
#: providers whose requests are OpenAI chat completions on the wire
LEAN_PROVIDERS = ("openai", "hosted_vllm")
#: OpenAI reasoning models: no temperature other than 1 (LiteLLM drops it with drop_params)
_REASONING = re.compile(r"^(o\d|gpt-5)")


class MalformedResponse(Exception):
    """A response that arrived but cannot be read as a chat completion."""


class HTTPStatusError(Exception):
    """A response with a status other than 200."""

    def __init__(self, status_code: int, message: str, headers: Any = None):
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.headers = headers


def split_model(model: str) -> tuple[str | None, str]:
    """``'openai/gpt-4o-mini'`` -> ``('openai', 'gpt-4o-mini')``; no prefix -> ``(None, model)``."""
    provider, sep, name = model.partition("/")
    return (provider, name) if sep else (None, model)


def lean_route(model: str, api_base: str | None, transport: str = "auto") -> tuple[str, str] | None:
    """``(base_url, model name on the wire)`` when ``model`` takes the lean path, else None."""
    if transport == "litellm":
        return None
    provider, name = split_model(model)
    base = api_base
    if provider == "openai" and not base:
        base = os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE") or OPENAI_BASE
    if provider == "hosted_vllm" and not base:
        base = os.environ.get("HOSTED_VLLM_API_BASE")
    if transport == "openai":
        if not base:
            raise ValueError(f"transport 'openai' needs an api_base for {model!r}")
        return base.rstrip("/"), name
    if base and (provider in LEAN_PROVIDERS or provider is None):
        return base.rstrip("/"), name
    return None


def resolve_key(model: str, api_key: str | None) -> str | None:
    """The key sent: the settings' key, else the provider's usual variable (read, never set)."""
    if api_key:
        return api_key
    provider, _ = split_model(model)
    if provider == "hosted_vllm":
        return os.environ.get("HOSTED_VLLM_API_KEY")
    return os.environ.get("OPENAI_API_KEY")


def wire_params(base: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Request parameters as OpenAI itself wants them (``max_completion_tokens``, no temperature
    for reasoning models); other endpoints get the parameters as given."""
    if base != OPENAI_BASE:
        return params
    out = dict(params)
    if "max_tokens" in out:
        out["max_completion_tokens"] = out.pop("max_tokens")
    if _REASONING.match(name) and out.get("temperature") not in (None, 1, 1.0):
        out.pop("temperature")
    return out


def answer_text(message: dict[str, Any]) -> str:
    """The same text as :func:`magnet_lib.llm.client.answer_text`, from a JSON message."""
    content = message.get("content")
    tool_calls = message.get("tool_calls")
    if tool_calls:
        calls = []
        for call in tool_calls:
            fn = call.get("function") or {}
            arguments = fn.get("arguments")
            with contextlib.suppress(json.JSONDecodeError):
                arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            calls.append({"name": fn.get("name"), "arguments": arguments})
        return json.dumps({"content": content, "tool_calls": calls}, ensure_ascii=False)
    if content is None:
        return ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


# --------------------------------------------------------------------------- prices

_PRICES: dict[str, tuple[float, float, float, float] | None] = {}
_PRICE_LOCK = threading.Lock()
_BUNDLED: dict[str, Any] | None = None


def cost_map() -> dict[str, Any]:
    """LiteLLM's model table (prices, capabilities): its loaded copy, else the JSON file it ships."""
    global _BUNDLED
    litellm = sys.modules.get("litellm")
    if litellm is not None and isinstance(getattr(litellm, "model_cost", None), dict):
        return litellm.model_cost
    if _BUNDLED is None:
        spec = importlib.util.find_spec("litellm")
        path = os.path.join(list(spec.submodule_search_locations)[0], "model_prices_and_context_window_backup.json") if spec else None
        try:
            with open(path, encoding="utf-8") as f:  # type: ignore[arg-type]
                _BUNDLED = json.load(f)
        except (OSError, TypeError, ValueError):
            _BUNDLED = {}
    return _BUNDLED


def model_entry(model: str) -> dict[str, Any] | None:
    """The model table's entry of ``model``: under its full name, else under the bare name when
    that entry is the provider's (``anthropic/claude-haiku-4-5`` is listed as ``claude-haiku-4-5``)."""
    provider, name = split_model(model)
    table = cost_map()
    entry = table.get(model)
    if entry is None and provider is not None:
        bare = table.get(name)
        if isinstance(bare, dict) and (provider == "openai" or bare.get("litellm_provider") == provider):
            entry = bare
    return entry if isinstance(entry, dict) else None


def prices(model: str) -> tuple[float, float, float, float] | None:
    """USD per prompt token, per completion token, and the same two for batch requests (half
    price where the map says nothing about batches), or None for a model without a price."""
    with _PRICE_LOCK:
        if model in _PRICES:
            return _PRICES[model]
    entry = model_entry(model)
    found = None
    if isinstance(entry, dict) and isinstance(entry.get("input_cost_per_token"), (int, float)):
        prompt = float(entry["input_cost_per_token"])
        completion = float(entry.get("output_cost_per_token") or 0.0)
        found = (
            prompt,
            completion,
            float(entry.get("input_cost_per_token_batches") or prompt / 2),
            float(entry.get("output_cost_per_token_batches") or completion / 2),
        )
    with _PRICE_LOCK:
        _PRICES[model] = found
    return found


def cost(model: str, prompt_tokens: int, completion_tokens: int, batch: bool = False) -> float:
    found = prices(model)
    if found is None:
        return 0.0
    p, c, bp, bc = found
    return (bp * prompt_tokens + bc * completion_tokens) if batch else (p * prompt_tokens + c * completion_tokens)


# --------------------------------------------------------------------------- sessions

_SESSIONS: dict[int, tuple[weakref.ref, Any]] = {}
_SESSION_LOCK = threading.Lock()


def session() -> Any:
    """The aiohttp session of the running event loop (made on first use)."""
    import aiohttp

    loop = asyncio.get_running_loop()
    with _SESSION_LOCK:
        found = _SESSIONS.get(id(loop))
        if found is not None and found[0]() is loop and not found[1].closed:
            return found[1]
        for key in [k for k, (ref, _) in _SESSIONS.items() if ref() is None or ref().is_closed()]:
            del _SESSIONS[key]
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30, enable_cleanup_closed=False)
        # trust_env=False: with it aiohttp reads ~/.netrc and the proxy variables in a worker
        # thread for every request (two thread hops on the path between one answer and the
        # next request); the proxy is looked up once per endpoint instead (:func:`proxy_for`)
        created = aiohttp.ClientSession(connector=connector, json_serialize=json.dumps, trust_env=False)
        _SESSIONS[id(loop)] = (weakref.ref(loop), created)
    _close_with_the_loop(loop, created)
    return created


def _close_with_the_loop(loop: asyncio.AbstractEventLoop, created: Any) -> None:
    """Close the session when its loop shuts down: ``asyncio.run`` finalizes async generators
    before closing a loop, so a suspended one whose ``finally`` closes the session does it."""

    async def holder():
        try:
            yield
        finally:
            _KEEP.discard(gen)
            await created.close()

    gen = holder()
    loop.create_task(gen.__anext__())  # start it; it stays suspended at ``yield``
    _KEEP.add(gen)


_KEEP: set[Any] = set()


def _close_all() -> None:
    """At exit: close sessions whose loops still run (the runner's background loop)."""
    with _SESSION_LOCK:
        items = list(_SESSIONS.values())
        _SESSIONS.clear()
    for ref, created in items:
        loop = ref()
        if loop is None or loop.is_closed() or created.closed:
            continue
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(created.close(), loop).result(timeout=2)
            else:
                loop.run_until_complete(created.close())
        except Exception:
            pass


atexit.register(_close_all)

_PROXIES: dict[str, tuple[Any, Any]] = {}


def proxy_for(base: str) -> tuple[Any, Any]:
    """``(proxy URL, proxy auth)`` for requests to ``base`` from ``HTTPS_PROXY`` / ``HTTP_PROXY`` /
    ``NO_PROXY`` (aiohttp's own rules), read once per endpoint; ``(None, None)`` for no proxy."""
    found = _PROXIES.get(base)
    if found is None:
        from aiohttp.helpers import get_env_proxy_for_url
        from yarl import URL

        try:
            found = get_env_proxy_for_url(URL(base))
        except LookupError:
            found = (None, None)
        _PROXIES[base] = found
    return found


async def chat(
    base: str, name: str, key: str | None, messages: list[dict[str, Any]], params: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """One ``POST {base}/chat/completions``; the decoded body of a 200, else an exception."""
    import aiohttp

    body = {"model": name, "messages": messages, **wire_params(base, name, params)}
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    proxy, proxy_auth = proxy_for(base)
    try:
        async with session().post(
            f"{base}/chat/completions",
            proxy=proxy,
            proxy_auth=proxy_auth,
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            raw = await response.read()
            status, response_headers = response.status, response.headers
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        if isinstance(exc, asyncio.TimeoutError):  # aiohttp's timeouts are both
            raise
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
    if status != 200:
        text = raw[:300].decode("utf-8", "replace")
        try:
            error = json.loads(raw).get("error")
            if isinstance(error, dict) and error.get("message"):
                text = str(error["message"])[:300]
        except (ValueError, AttributeError):
            pass
        raise HTTPStatusError(status, text, response_headers)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise MalformedResponse(f"the response body is not JSON: {exc}") from None
    if not isinstance(data, dict) or not data.get("choices") or not isinstance(data["choices"][0], dict):
        raise MalformedResponse("the response has no choices")
    return data
