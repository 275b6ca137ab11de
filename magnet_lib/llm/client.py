"""The model client: one chat completion, within limits, with retries.

Any LiteLLM provider string works (``openai/gpt-4o-mini``, ``anthropic/...``, ...); an
OpenAI-compatible server such as vLLM is reached with ``hosted_vllm/<model>`` or
``openai/<model>`` plus ``api_base`` (e.g. ``http://127.0.0.1:8000/v1``).

Two transports behind one interface (``LLMSettings.transport``): OpenAI and OpenAI-compatible
``api_base`` endpoints go over the lean aiohttp path of :mod:`magnet_lib.llm.openai_path`
(a fourth to a fifth of the client CPU per request of the LiteLLM path, benchmarks/llm_vs_curator.py); every other provider through
``litellm.acompletion``. Either way the client adds:

- **limits**: at most ``concurrency`` requests in flight (adaptive: halved on a 429 or a
  timeout, grown back while healthy; :class:`~magnet_lib.llm.limits.AdaptiveLimiter`), a
  process-wide cool-down per model after a 429 (:func:`~magnet_lib.llm.limits.cooldown_for`:
  every request to that model waits out the ``Retry-After``), and token buckets for
  requests-per-minute and tokens-per-minute (a request reserves its estimated prompt tokens
  plus ``max_tokens`` and gets the unused part back when the answer reports its usage);
- **retries** on 429 (waiting at least the ``Retry-After`` the server asked for), 5xx,
  timeouts, connection errors and malformed response bodies, with exponential backoff and
  jitter (``backoff_base_s``, ``backoff_max_s``, ``backoff_jitter``); at most ``max_retries`` per request and ``retry_budget_s`` seconds of failed
  attempts plus waiting per item (:class:`RetryBudget`). LiteLLM's and the OpenAI SDK's own
  retries are switched off so every retry is counted here;
- **secrets**: the API key is handed to LiteLLM per call, never put in ``os.environ``, and
  scrubbed from every error message the client produces.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import magnet_lib.llm.anthropic_batch as anthropic_batch
import magnet_lib.llm.openai_path as openai_path
from magnet_lib.llm.batch import BatchQueue, OpenAIBatches
from magnet_lib.llm.limits import AdaptiveLimiter, CoolDown, cooldown_for
from magnet_lib.llm.openai_path import MalformedResponse
from magnet_lib.settings import LLMSettings

log = logging.getLogger("magnet.llm")

_BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+", re.IGNORECASE)
_KEYLIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{12,}")


def scrub(text: str, secret: str | None) -> str:
    """``text`` with the key (and anything shaped like a bearer token or key) masked."""
    if secret:
        text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    return _KEYLIKE.sub("***", text)


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A cheap prompt size estimate (4 characters a token) for the tokens-per-minute bucket."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return chars // 4 + 4 * len(messages) + 1


class TokenBucket:
    """A token bucket refilled at ``per_minute / 60`` per second, holding ``burst_s`` seconds
    of refill (at least one unit). A request larger than the bucket waits for a full bucket and
    leaves it in debt, so nothing waits forever. Safe to share between event loops and threads."""

    def __init__(self, per_minute: float, burst_s: float = 1.0):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self, amount: float = 1.0) -> float:
        """Take ``amount``; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                need = min(amount, self.capacity)
                if self.level >= need:
                    self.level -= amount
                    return waited
                delay = (need - self.level) / self.rate
            await asyncio.sleep(delay)
            waited += delay

    def give_back(self, amount: float) -> None:
        """Return an over-reservation (or take more, when ``amount`` is negative)."""
        with self._lock:
            self._refill()
            self.level = min(self.capacity, self.level + amount)


@dataclass
class RetryBudget:
    """What one item may still spend on retries, across all its requests (re-asks included)."""

    seconds: float
    spent_s: float = 0.0
    attempts: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def allows(self, wait_s: float, attempt_s: float) -> bool:
        return self.spent_s + attempt_s + wait_s <= self.seconds


@dataclass
class Completion:
    """One answer: the text (or the tool calls as JSON), usage and cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class TransportError(Exception):
    """A request that could not be completed: not retryable, or past the retry limits."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass
class _Failure:
    kind: str  # rate_limited | server_error | timeout | connection | malformed_response | request_error
    retryable: bool
    message: str
    retry_after: float | None = None


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``Retry-After``), wherever LiteLLM left the headers."""
    value = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and value is None:
        seen.add(id(current))
        for headers in (
            getattr(current, "litellm_response_headers", None),
            getattr(current, "headers", None),
            getattr(getattr(current, "response", None), "headers", None),
        ):
            if headers is not None and hasattr(headers, "get"):
                value = headers.get("retry-after") or headers.get("Retry-After")
                if value is not None:
                    break
        current = current.__cause__ or current.__context__
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


_CONNECTION = re.compile(
    r"Cannot connect to host|Connection error|Connect call failed|Connection refused|Server disconnected|"
    r"ConnectError|Connection reset|RemoteProtocolError"
)
_UNREADABLE = re.compile(
    r"Expecting value|Expecting property name|Unterminated string|JSONDecodeError|Extra data|Invalid control character"
)


def classify_failure(exc: BaseException) -> _Failure:
    """Which kind of transport failure ``exc`` is, and whether a retry may help."""
    import httpx

    litellm = sys.modules.get("litellm")  # its exceptions exist only when it was used
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, httpx.TimeoutException)) or (litellm and isinstance(exc, litellm.Timeout)):
        return _Failure("timeout", True, message)
    if (
        isinstance(exc, (MalformedResponse, json.JSONDecodeError))
        or (litellm and isinstance(exc, litellm.APIResponseValidationError))
        or _UNREADABLE.search(str(exc))
    ):
        # LiteLLM reports a body that is not JSON as a 500 or a connection error
        return _Failure("malformed_response", True, message)
    if litellm and isinstance(exc, litellm.RateLimitError):
        return _Failure("rate_limited", True, message, _retry_after(exc))
    if (
        isinstance(exc, (httpx.TransportError, ConnectionError))
        or (litellm and isinstance(exc, litellm.APIConnectionError))
        or _CONNECTION.search(str(exc))
    ):
        # LiteLLM reports a refused or dropped connection as a 500 too
        return _Failure("connection", True, message)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        if status == 429:
            return _Failure("rate_limited", True, message, _retry_after(exc))
        if status >= 500 or status in (408, 409):
            return _Failure("server_error", True, message)
        return _Failure("request_error", False, message)
    if isinstance(exc, OSError):
        return _Failure("connection", True, message)
    return _Failure("request_error", False, message)


def answer_text(response: Any) -> str:
    """The text of the first choice; tool calls (native function calling) as a JSON object
    ``{"content": ..., "tool_calls": [{"name", "arguments"}]}`` so they cache and parse as text."""
    message = response.choices[0].message
    content = getattr(message, "content", None)
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        calls = []
        for call in tool_calls:
            fn = call.function
            try:
                arguments = json.loads(fn.arguments) if isinstance(fn.arguments, str) else fn.arguments
            except json.JSONDecodeError:
                arguments = fn.arguments
            calls.append({"name": fn.name, "arguments": arguments})
        return json.dumps({"content": content, "tool_calls": calls}, ensure_ascii=False)
    if content is None:
        return ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _completion_from(model: str, data: dict[str, Any], batch: bool = False) -> Completion:
    """A :class:`Completion` from a chat completion body (lean path and batch results)."""
    usage = data.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    completion_tokens = int(usage.get("completion_tokens") or 0)
    return Completion(
        text=openai_path.answer_text(data["choices"][0].get("message") or {}),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=openai_path.cost(model, prompt_tokens, completion_tokens, batch=batch),
    )


_CONFIGURED = False


def _litellm() -> Any:
    """LiteLLM, imported on first use (the offline path never pays for it) and told to keep
    quiet: no banner on errors, no debug printing, no callbacks of its own."""
    global _CONFIGURED
    import litellm

    if not _CONFIGURED:
        litellm.suppress_debug_info = True
        litellm.set_verbose = False
        litellm.telemetry = False
        _CONFIGURED = True
    return litellm


class ModelClient:
    """Chat completions for one set of :class:`LLMSettings`, over the lean OpenAI-compatible
    path or LiteLLM (see the module docstring).

    The settings' ``backoff_base_s`` / ``backoff_max_s`` / ``backoff_jitter`` shape the
    exponential backoff (``base * 2**retry``, capped, partly random) when no ``Retry-After``
    is given.
    """

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self._secret = settings.api_key.get_secret_value() if settings.api_key else None
        self._rpm = TokenBucket(settings.requests_per_minute, burst_s=1.0) if settings.requests_per_minute else None
        self._tpm = TokenBucket(settings.tokens_per_minute, burst_s=10.0) if settings.tokens_per_minute else None
        self.limiter = AdaptiveLimiter(settings.concurrency, settings.min_concurrency, settings.adaptive_concurrency)
        self._routes: dict[str, tuple[str, str] | None] = {}
        self._keys: dict[str, str | None] = {}
        self._batch_queues: dict[tuple[int, str], Any] = {}
        self._cost_unknown: set[str] = set()
        self._rng = random.Random()

    @property
    def in_flight(self) -> int:
        return self.limiter.in_flight

    @property
    def max_in_flight(self) -> int:
        return self.limiter.max_in_flight

    # ------------------------------------------------------------------ helpers
    def scrub(self, text: str) -> str:
        text = scrub(text, self._secret)
        for key in self._keys.values():  # a key read from the provider's variable
            if key and key != self._secret:
                text = text.replace(key, "***")
        return text

    def route(self, model: str) -> tuple[str, str] | None:
        """``(base_url, model name)`` when ``model`` goes over the lean path, None for LiteLLM."""
        if model not in self._routes:
            self._routes[model] = openai_path.lean_route(model, self.settings.api_base, self.settings.transport)
        return self._routes[model]

    def cooldown(self, model: str) -> CoolDown:
        """The process-wide 429 cool-down of ``model`` at this client's endpoint."""
        route = self.route(model)
        return cooldown_for(route[0] if route else self.settings.api_base, model)

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based): an exponential cap, of which the
        ``backoff_jitter`` share is drawn at random."""
        s = self.settings
        cap = min(s.backoff_max_s, s.backoff_base_s * (2**retry))
        return self._rng.uniform(cap * (1 - s.backoff_jitter), cap)

    def _cost(self, model: str, response: Any) -> float:
        """LiteLLM's price of the answer (it computes one per response already), 0 when unknown."""
        hidden = getattr(response, "_hidden_params", None) or {}
        known = hidden.get("response_cost") if isinstance(hidden, dict) else None
        if isinstance(known, (int, float)):
            return float(known)
        if model in self._cost_unknown:
            return 0.0
        litellm = _litellm()
        try:
            return float(litellm.completion_cost(completion_response=response, model=model) or 0.0)
        except Exception:  # unknown model or price: no cost, and no second try for this model
            self._cost_unknown.add(model)
            return 0.0

    # ------------------------------------------------------------------ one request
    async def _send_lean(self, route: tuple[str, str], model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        base, name = route
        if model not in self._keys:
            self._keys[model] = openai_path.resolve_key(model, self._secret)
        data = await openai_path.chat(base, name, self._keys[model], messages, params, self.settings.timeout_s)
        return _completion_from(model, data)

    async def _send_batch(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        """One request through the provider's batch API (:mod:`magnet_lib.llm.batch`)."""
        loop_key = (id(asyncio.get_running_loop()), model)
        queue = self._batch_queues.get(loop_key)
        if queue is None:
            queue = self._batch_queues[loop_key] = self._batch_queue(model)
        return _completion_from(model, await queue.request(messages, params), batch=True)

    def _batch_queue(self, model: str) -> BatchQueue:
        s = self.settings
        common = {
            "window_s": s.batch_window_s, "max_requests": s.batch_max_requests, "poll_s": s.batch_poll_s, "timeout_s": s.batch_timeout_s,
        }  # fmt: skip
        route = self.route(model)
        if route is not None:
            if model not in self._keys:
                self._keys[model] = openai_path.resolve_key(model, self._secret)
            return OpenAIBatches(base=route[0], name=route[1], key=self._keys[model], completion_window=s.batch_completion_window, **common)
        provider, name = openai_path.split_model(model)
        if provider == "anthropic":
            if model not in self._keys:
                self._keys[model] = anthropic_batch.resolve_key(self._secret)
            return anthropic_batch.AnthropicBatches(base=anthropic_batch.base_url(s.api_base), name=name, key=self._keys[model], **common)
        raise ValueError(f"batch mode supports OpenAI, OpenAI-compatible endpoints and Anthropic, not {model!r} (set llm.batch = false)")

    async def _send_litellm(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        litellm = _litellm()
        s = self.settings
        response = await asyncio.wait_for(
            litellm.acompletion(
                model=model,
                messages=messages,
                api_base=s.api_base,
                api_key=self._secret,
                timeout=s.timeout_s,
                max_retries=0,  # the SDK's retries: off, ours are counted
                num_retries=0,  # LiteLLM's retries: off
                drop_params=True,
                **params,
            ),
            timeout=s.timeout_s + 5.0,  # a guard in case a provider ignores ``timeout``
        )
        if not getattr(response, "choices", None):
            raise MalformedResponse("the response has no choices")
        usage = getattr(response, "usage", None)
        return Completion(
            text=answer_text(response),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost_usd=self._cost(model, response),
        )

    async def _send(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        """One attempt, inside the rate buckets (the caller holds a concurrency slot)."""
        reserve = estimate_tokens(messages) + int(params.get("max_tokens") or 0)
        if self._rpm:
            await self._rpm.acquire(1)
        if self._tpm:
            await self._tpm.acquire(reserve)
        route = self.route(model)
        try:
            if route is not None:
                completion = await self._send_lean(route, model, messages, params)
            else:
                completion = await self._send_litellm(model, messages, params)
        except BaseException:
            if self._tpm:
                self._tpm.give_back(reserve)  # a failed request used no tokens
            raise
        if self._tpm:
            used = (completion.prompt_tokens + completion.completion_tokens) or reserve
            self._tpm.give_back(reserve - used)
        return completion

    async def complete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], budget: RetryBudget) -> Completion:
        """One answer, retrying transport failures within the per-request and per-item limits.

        Raises :class:`TransportError` (its message scrubbed of the key) when it gives up."""
        retry = 0
        cooldown = self.cooldown(model)
        batch = self.settings.batch
        while True:
            if batch:  # no concurrency bound or cool-down: the provider queues the batch
                budget.attempts += 1
                try:
                    return await self._send_batch(model, messages, params)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failure = classify_failure(exc)
                    attempt_s = 0.0  # waiting for a batch is not a failed attempt's time
            else:
                if cooldown.until:
                    await cooldown.wait()
                ticket = await self.limiter.acquire()
                if cooldown.until:
                    await cooldown.wait()  # a 429 came back while this one queued for a slot
                started = time.monotonic()
                budget.attempts += 1
                try:
                    completion = await self._send(model, messages, params)
                except asyncio.CancelledError:
                    self.limiter.release(ticket)
                    raise
                except Exception as exc:  # every failure is classified, none escapes unscrubbed
                    failure = classify_failure(exc)
                    attempt_s = time.monotonic() - started
                    self.limiter.release(ticket, overloaded=failure.kind in ("rate_limited", "timeout"))
                else:
                    self.limiter.release(ticket, ok=True)
                    return completion
            if failure.kind == "rate_limited" and not batch:
                # every request of the process to this model waits as long as this one does
                cooldown.pause(failure.retry_after if failure.retry_after is not None else self.backoff(0))
            message = self.scrub(failure.message)[:300]
            budget.errors.append(failure.kind)
            if not failure.retryable:
                raise TransportError(f"{failure.kind}: {message}", failure.kind) from None
            if retry >= self.settings.max_retries:
                raise TransportError(
                    f"{failure.kind} after {retry + 1} attempts (max_retries={self.settings.max_retries}): {message}",
                    failure.kind,
                ) from None
            wait = self.backoff(retry)
            if failure.retry_after is not None:
                # the server said when: wait that long, plus a little jitter so waiters spread
                wait = failure.retry_after + self._rng.uniform(0, min(1.0, 0.1 * failure.retry_after + 0.05))
            if not budget.allows(wait, attempt_s):
                budget.spent_s += attempt_s
                raise TransportError(
                    f"{failure.kind}: retry budget of {budget.seconds:g}s spent after {retry + 1} attempts: {message}",
                    failure.kind,
                ) from None
            log.debug("retrying %s after %s (%.2fs): %s", model, failure.kind, wait, message)
            budget.spent_s += attempt_s + wait
            budget.retries += 1
            retry += 1
            await asyncio.sleep(wait)
