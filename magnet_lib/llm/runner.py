"""Runs tasks over items: offline, or through the model client with cache and accounting.

``TaskRunner.run(task, items)`` returns one :class:`TaskResult` per item, in order: a value,
or a reject with its reason. It never raises for a bad answer or a failed request and never
drops an item. With no model configured for the task (``settings.model`` and
``settings.task_models[task.name]`` unset) every item goes through ``task.offline``.

In LLM mode an item is: render -> (cache or request) -> parse; an answer that does not parse
is re-asked with the error shown (the bad answer as an assistant turn, the complaint as a
user turn) at most ``max_reasks`` times, then recorded as a reject. Every answer is cached
under the key of the conversation that produced it (see :mod:`magnet_lib.llm.cache`), so a
rerun replays the same results without a request.

``run`` is synchronous for callers (Dagster assets, scripts): the requests run on one
process-wide event loop in a background thread, which works from any thread, with or without
a running loop of its own. Async callers use ``arun``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

import magnet_lib.llm.structured as structured
from magnet_lib.llm.cache import ResponseCache, cache_key
from magnet_lib.llm.client import Completion, ModelClient, RetryBudget, TransportError
from magnet_lib.llm.task import ParseError, Task, validation_message
from magnet_lib.models import OFFLINE
from magnet_lib.settings import LLMSettings

log = logging.getLogger("magnet.llm")

T = TypeVar("T")
O = TypeVar("O", bound=BaseModel)

REASK = "Your answer could not be used: {error}\nAnswer the request above again, in exactly the format it asks for, and nothing else."


class TaskResult(BaseModel, Generic[O]):
    """The end state of one item: ``value``, or ``reject_reason`` saying why there is none."""

    value: O | None = None
    reject_reason: str | None = None
    generator: str = Field(OFFLINE, description="'offline' or the model string that answered.")
    cached: bool = Field(False, description="True when every answer came from the cache (no request).")
    sample_index: int = 0
    reasks: int = 0
    retries: int = 0
    answer: str | None = Field(None, description="The last raw answer of the model (LLM mode).")

    @property
    def ok(self) -> bool:
        return self.value is not None


class TaskStats(BaseModel):
    """Accounting of one task over a runner's life (one materialization for a resource's runner)."""

    model: str = OFFLINE
    items: int = 0
    calls: int = Field(0, description="Requests sent to the model, retries and re-asks included.")
    cache_hits: int = 0
    retries: int = 0
    reasks: int = 0
    rejects: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    offline_items: int = 0
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    transport_errors: dict[str, int] = Field(default_factory=dict, description="Failed requests by kind.")

    def reject(self, reason: str) -> None:
        self.rejects += 1
        key = reason[:80]
        self.reject_reasons[key] = self.reject_reasons.get(key, 0) + 1


# --------------------------------------------------------------------------- the shared event loop

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_PID: int | None = None
_LOOP_THREAD: threading.Thread | None = None
_LOOP_LOCK = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in a daemon thread (recreated after a fork)."""
    global _LOOP, _LOOP_PID, _LOOP_THREAD
    with _LOOP_LOCK:
        if _LOOP is None or os.getpid() != _LOOP_PID or _LOOP.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="magnet-llm-loop", daemon=True)
            thread.start()
            _LOOP, _LOOP_PID, _LOOP_THREAD = loop, os.getpid(), thread
        return _LOOP


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the shared loop and wait for it from this (any) thread."""
    loop = _background_loop()
    if threading.current_thread() is _LOOP_THREAD:
        coro.close()
        raise RuntimeError("TaskRunner.run was called on the runner's own event loop; await TaskRunner.arun instead")
    future: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
    return future.result()


# --------------------------------------------------------------------------- the runner


class TaskRunner:
    """Runs tasks over items with one model client, one response cache and per-task stats.

    ``cache_dir``: where the response cache lives (``settings.cache_dir``); None = no cache.
    ``backoff_base_s`` / ``backoff_max_s``: override the settings' retry backoff (tests make
    retries fast with them; see :class:`ModelClient`).
    """

    def __init__(
        self,
        settings: LLMSettings | None = None,
        cache_dir: Path | None = None,
        *,
        backoff_base_s: float | None = None,
        backoff_max_s: float | None = None,
    ):
        self.settings = settings or LLMSettings()
        overrides = {k: v for k, v in (("backoff_base_s", backoff_base_s), ("backoff_max_s", backoff_max_s)) if v is not None}
        if overrides:
            self.settings = self.settings.model_copy(update=overrides)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.stats: dict[str, TaskStats] = {}
        self._client: ModelClient | None = None
        self._cache: ResponseCache | None = None
        #: requests on their way, by (event loop, cache key): the same request asked again
        #: meanwhile waits for that answer instead of sending its own (see ``_answer``)
        self._in_flight: dict[tuple[int, str], asyncio.Future[str]] = {}

    # ------------------------------------------------------------------ parts
    def model_for(self, task: Task) -> str | None:
        return self.settings.task_models.get(task.name) or self.settings.model

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            self._client = ModelClient(self.settings)
        return self._client

    @property
    def cache(self) -> ResponseCache | None:
        if self._cache is None and self.cache_dir is not None:
            self._cache = ResponseCache(self.cache_dir, write_behind=True)
        return self._cache

    def sampling_params(self, task: Task, item: Any, temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
        """What is sent besides the messages (and is part of the cache key)."""
        params: dict[str, Any] = {
            "temperature": temperature
            if temperature is not None
            else (task.temperature if task.temperature is not None else self.settings.temperature),
            "max_tokens": max_tokens or task.max_tokens or self.settings.max_tokens,
        }
        params.update(task.request_params(item))
        model = self.model_for(task)
        if model is not None and "response_format" not in params:
            mode = structured.mode_for(self.settings.structured_outputs, model)
            fmt = structured.response_format(mode, task.name, task.response_schema(item)) if mode != "off" else None
            if fmt is not None:
                params["response_format"] = fmt
        return params

    def prompt(
        self, task: Task, item: Any, temperature: float | None = None, max_tokens: int | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The messages and request parameters sent for one item (before any re-ask)."""
        return task.render(item), self.sampling_params(task, item, temperature, max_tokens)

    def _stats(self, task: Task) -> TaskStats:
        stats = self.stats.get(task.name)
        if stats is None:
            stats = self.stats[task.name] = TaskStats(model=self.model_for(task) or OFFLINE)
        return stats

    # ------------------------------------------------------------------ public API
    def run(
        self,
        task: Task[Any, O],
        items: Sequence[BaseModel],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        sample_index: int = 0,
    ) -> list[TaskResult[O]]:
        """One result per item, in order. ``temperature`` / ``max_tokens`` override the task's
        and the settings' values for this call; ``sample_index`` tells apart repeated samples of
        the same prompt (each index is its own cache entry)."""
        if self.model_for(task) is None:
            return [self._offline(task, item, sample_index) for item in items]
        return run_sync(self.arun(task, items, temperature=temperature, max_tokens=max_tokens, sample_index=sample_index))

    def run_samples(
        self,
        task: Task[Any, O],
        items: Sequence[BaseModel],
        n: int,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> list[list[TaskResult[O]]]:
        """``n`` independent samples per item (e.g. the 10 student samples of the paper):
        ``result[i][k]`` is sample ``k`` of item ``i``."""
        if self.model_for(task) is None:
            return [[self._offline(task, item, k) for k in range(n)] for item in items]
        return run_sync(self.arun_samples(task, items, n, temperature=temperature, max_tokens=max_tokens))

    async def arun(
        self,
        task: Task[Any, O],
        items: Sequence[BaseModel],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        sample_index: int = 0,
    ) -> list[TaskResult[O]]:
        """``run`` for async callers."""
        model = self.model_for(task)
        if model is None:
            return [self._offline(task, item, sample_index) for item in items]
        gate = self._gate()
        return await self._start_all(self._gated(gate, task, item, model, temperature, max_tokens, sample_index) for item in items)

    async def arun_samples(
        self,
        task: Task[Any, O],
        items: Sequence[BaseModel],
        n: int,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> list[list[TaskResult[O]]]:
        model = self.model_for(task)
        if model is None:
            return [[self._offline(task, item, k) for k in range(n)] for item in items]
        gate = self._gate()
        flat = await self._start_all(self._gated(gate, task, item, model, temperature, max_tokens, k) for item in items for k in range(n))
        return [list(flat[i * n : (i + 1) * n]) for i in range(len(items))]

    def metadata(self) -> dict[str, Any]:
        """Per-task accounting, ready for Dagster metadata (no secrets)."""
        return {name: s.model_dump() for name, s in self.stats.items()}

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one item
    def _offline(self, task: Task[Any, O], item: BaseModel, sample_index: int) -> TaskResult[O]:
        stats = self._stats(task)
        stats.items += 1
        try:
            value = task.offline_sample(item, sample_index) if sample_index else task.offline(item)
        except Exception as exc:  # an offline failure is a reject, never a crash
            reason = f"offline {task.name} failed: {type(exc).__name__}: {exc}"
            stats.reject(reason)
            return TaskResult(reject_reason=reason, sample_index=sample_index)
        stats.offline_items += 1
        return TaskResult(value=value, sample_index=sample_index)

    def _gate(self) -> asyncio.Semaphore | None:
        """How many items of one call are worked on at once: a few more than the requests
        allowed in flight, so an item is rendered just before a request slot frees up (not all
        of them before the first request goes out); unbounded in batch mode, where every
        request of the call belongs in the batch."""
        if self.settings.batch:
            return None
        return asyncio.Semaphore(2 * max(1, self.settings.concurrency) + 16)  # as _start_all's ramp

    async def _start_all(self, coros: Any) -> list[Any]:
        """Every item as a task, in order, started one loop step apart: an item's request goes
        out (aiohttp writes it from a task of its own) before the next item is rendered,
        instead of the first request waiting for every prompt of the call to be rendered.
        The cache's buffered answers are written before the call returns."""
        tasks = []
        ramp = 2 * max(1, self.settings.concurrency) + 16 if not self.settings.batch else 0  # the gate's size
        try:
            for coro in coros:
                tasks.append(asyncio.ensure_future(coro))
                if len(tasks) <= ramp:  # later items wait at the gate and start as earlier ones finish
                    await asyncio.sleep(0)
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        finally:
            if self._cache is not None:
                try:
                    self._cache.flush()
                except Exception as exc:  # the answers stand; only their cache rows are lost
                    log.warning("could not write the response cache: %s", exc)

    async def _gated(self, gate: asyncio.Semaphore | None, *args: Any) -> TaskResult[O]:
        if gate is None:
            return await self._safe_item(*args)
        async with gate:
            return await self._safe_item(*args)

    async def _safe_item(
        self,
        task: Task[Any, O],
        item: BaseModel,
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        sample_index: int,
    ) -> TaskResult[O]:
        """``_item``, with an unexpected failure (a full disk under the cache, a bug) recorded
        as the item's reject instead of failing the whole batch."""
        try:
            return await self._item(task, item, model, temperature, max_tokens, sample_index)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = self.client.scrub(f"internal error in {task.name}: {type(exc).__name__}: {exc}")
            self._stats(task).reject(reason)
            return TaskResult(reject_reason=reason, generator=model, sample_index=sample_index)

    def _reject(self, task: Task, model: str, sample_index: int, reason: str, **extra: Any) -> TaskResult[O]:
        reason = self.client.scrub(reason)
        self._stats(task).reject(reason)
        return TaskResult(reject_reason=reason, generator=model, sample_index=sample_index, **extra)

    async def _item(
        self,
        task: Task[Any, O],
        item: BaseModel,
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        sample_index: int,
    ) -> TaskResult[O]:
        """render -> (cache or request) -> parse, re-asking an unparsable answer."""
        stats = self._stats(task)
        stats.items += 1
        scrub = self.client.scrub
        try:
            messages, params = self.prompt(task, item, temperature, max_tokens)
        except Exception as exc:
            return self._reject(task, model, sample_index, f"render {task.name} failed: {type(exc).__name__}: {exc}")

        budget = RetryBudget(self.settings.retry_budget_s)
        conversation = list(messages)
        all_cached = True
        reasks = 0
        while True:
            try:
                text, cached = await self._answer(task, model, conversation, params, sample_index, budget)
            except TransportError as exc:
                return self._reject(task, model, sample_index, f"transport: {exc.reason}", reasks=reasks, retries=budget.retries)
            all_cached = all_cached and cached
            try:
                value = task.parse(text, item)
            except (ParseError, ValidationError, ValueError) as exc:
                error = validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
                if reasks >= self.settings.max_reasks:
                    return self._reject(
                        task, model, sample_index, f"unparsable after {reasks} re-asks: {error}",
                        reasks=reasks, retries=budget.retries, answer=scrub(text),
                    )  # fmt: skip
                reasks += 1
                stats.reasks += 1
                conversation = reasked(conversation, text, error)
                continue
            except Exception as exc:  # a parser bug: recorded, not re-asked
                reason = f"parser of {task.name} crashed: {type(exc).__name__}: {exc}"
                return self._reject(task, model, sample_index, reason, answer=scrub(text))
            return TaskResult(
                value=value, generator=model, cached=all_cached, sample_index=sample_index,
                reasks=reasks, retries=budget.retries, answer=scrub(text),
            )  # fmt: skip

    async def _answer(
        self,
        task: Task,
        model: str,
        conversation: list[dict[str, Any]],
        params: dict[str, Any],
        sample_index: int,
        budget: RetryBudget,
    ) -> tuple[str, bool]:
        """The answer to ``conversation`` and whether it came from the cache; a request's
        answer is cached. Raises :class:`TransportError` when the request fails."""
        key = cache_key(
            model=model, messages=conversation, params=params, task=task.name,
            task_version=task.version, sample_index=sample_index,
        )  # fmt: skip
        cache = self.cache
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            self._stats(task).cache_hits += 1
            return hit.text, True
        # Two items of a run may render the same request (what they differ in is not in the
        # prompt). One request answers both: sent twice, a sampled model answers each its own
        # way while the cache keeps one answer per request, so a rerun would not give the
        # first item what it got. A waiting request counts as a cache hit.
        loop = asyncio.get_running_loop()
        flight = (id(loop), key)
        sent = self._in_flight.get(flight)
        if sent is not None:
            text = await asyncio.shield(sent)
            self._stats(task).cache_hits += 1
            return text, True
        sent = self._in_flight[flight] = loop.create_future()
        try:
            completion = await self._request(task, model, conversation, params, budget)
        except asyncio.CancelledError:
            sent.cancel()
            raise
        except BaseException as exc:  # the waiting requests fail as this one did
            sent.set_exception(exc)
            sent.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._in_flight[flight]
        sent.set_result(completion.text)
        if cache is not None:
            cache.put(
                key, task=task.name, task_version=task.version, model=model, text=completion.text,
                prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                cost_usd=completion.cost_usd,
            )  # fmt: skip
        return completion.text, False

    async def _request(
        self, task: Task, model: str, conversation: list[dict[str, Any]], params: dict[str, Any], budget: RetryBudget
    ) -> Completion:
        """One request (with the budget's retries), its attempts, errors and usage counted."""
        stats = self._stats(task)
        attempts_before, retries_before = budget.attempts, budget.retries
        try:
            completion = await self.client.complete(model, conversation, params, budget)
        finally:
            stats.calls += budget.attempts - attempts_before
            stats.retries += budget.retries - retries_before
            for kind in budget.errors:
                stats.transport_errors[kind] = stats.transport_errors.get(kind, 0) + 1
            budget.errors.clear()
        stats.prompt_tokens += completion.prompt_tokens
        stats.completion_tokens += completion.completion_tokens
        stats.cost_usd += completion.cost_usd
        return completion


def reasked(conversation: list[dict[str, Any]], answer: str, error: str) -> list[dict[str, Any]]:
    """The conversation with the unusable ``answer`` and the complaint about it appended."""
    return conversation + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": REASK.format(error=error)},
    ]
