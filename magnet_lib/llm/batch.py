"""Batch mode: requests go through the provider's batch API instead of one by one.

With ``LLMSettings.batch = True`` the client queues each request instead of sending it; once
no new request has come for ``batch_window_s`` (or ``batch_max_requests`` are queued, or the
lines would pass the provider's size limit) the queue becomes one batch (:class:`BatchQueue`,
shared by the providers). OpenAI's format (:class:`OpenAIBatches`, through the ``openai`` SDK):

1. upload a JSONL file, one line per request (``custom_id``, ``POST /v1/chat/completions``,
   the body the lean path would send), ``purpose="batch"``;
2. create the batch (``completion_window``), poll it every ``batch_poll_s`` until it is
   ``completed`` / ``failed`` / ``expired`` / ``cancelled`` (or ``batch_timeout_s`` passes);
3. download the output and error files and hand every waiting request its line.

Anthropic's Message Batches API is :mod:`magnet_lib.llm.anthropic_batch`; its results are
handed back in the same shape (an OpenAI chat completion body), so the client reads both alike.

Everything around a request stays as it is: the runner still renders, looks up the cache,
parses, re-asks (a re-ask is queued into the next batch), caches every answer and counts
every request, retry and token; the client still classifies failures and retries them (a line
answered 429 or 500, a line missing when a batch expired, a body that is not a completion go
into the next batch, within ``max_retries``). Only the price differs: the cost map's batch
prices (half the online price where the map has none). Time spent waiting for a batch is not
charged to an item's retry budget (a batch may take hours); waits between retries are.

OpenAI itself and OpenAI-compatible ``api_base`` endpoints that serve ``/v1/files`` and
``/v1/batches`` (the lean path's models), and ``anthropic/<model>``, are supported; other
providers' requests become rejects saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import magnet_lib.llm.openai_path as openai_path
from magnet_lib.llm.openai_path import HTTPStatusError, MalformedResponse

log = logging.getLogger("magnet.llm")

DONE = ("completed", "failed", "expired", "cancelled")


@dataclass
class _Entry:
    custom_id: str
    line: dict[str, Any]  # the request as the provider's batch format has it
    future: asyncio.Future


@dataclass(kw_only=True)
class BatchQueue:
    """The requests of one client to one model on one event loop, waiting for a batch: the
    queueing, flushing and hand-out shared by the providers' batch APIs. A subclass says how
    one request is written (:meth:`line`) and how one batch is run (:meth:`_batch`)."""

    name: str
    key: str | None
    window_s: float
    max_requests: int
    poll_s: float
    timeout_s: float
    #: bytes of request lines per batch at most (a margin under the provider's limit)
    max_bytes: int = 190_000_000
    pending: list[_Entry] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)  # batch ids, oldest first
    _bytes: int = 0
    _last: float = 0.0
    _counter: int = 0
    _flusher: asyncio.Task | None = None
    _running: set[asyncio.Task] = field(default_factory=set)
    _sdk: Any = None

    def line(self, custom_id: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _batch(self, entries: list[_Entry]) -> dict[str, Any]:
        """custom_id -> a chat completion body (OpenAI's shape) or the exception for that request."""
        raise NotImplementedError

    async def request(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        """Queue one chat request; returns its completion body (OpenAI's shape) once its batch is done."""
        loop = asyncio.get_running_loop()
        self._counter += 1
        line = self.line(f"r{self._counter}", messages, params)
        size = len(json.dumps(line, ensure_ascii=False).encode("utf-8")) + 1
        if self.pending and self._bytes + size > self.max_bytes:
            self._flush()  # this one would make the batch too large: it starts the next one
        entry = _Entry(line["custom_id"], line, loop.create_future())
        self.pending.append(entry)
        self._bytes += size
        self._last = time.monotonic()
        if len(self.pending) >= self.max_requests:
            self._flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._wait_and_flush())
        return await entry.future

    async def _wait_and_flush(self) -> None:
        while self.pending:
            idle = time.monotonic() - self._last
            if idle >= self.window_s:
                self._flush()
                return
            await asyncio.sleep(self.window_s - idle)

    def _flush(self) -> None:
        entries, self.pending, self._bytes = self.pending, [], 0
        if entries:
            task = asyncio.get_running_loop().create_task(self._run(entries))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, entries: list[_Entry]) -> None:
        try:
            results = await self._batch(entries)
        except asyncio.CancelledError:
            for e in entries:
                if not e.future.done():
                    e.future.cancel()
            raise
        except Exception as exc:  # the batch as a whole failed: every request of it did
            for e in entries:
                if not e.future.done():
                    e.future.set_exception(exc)
            return
        for e in entries:
            if e.future.done():
                continue
            outcome = results.get(e.custom_id)
            if isinstance(outcome, BaseException):
                e.future.set_exception(outcome)
            elif outcome is None:
                e.future.set_exception(HTTPStatusError(503, "the batch ended without an answer for this request (expired or lost)"))
            else:
                e.future.set_result(outcome)


@dataclass(kw_only=True)
class OpenAIBatches(BatchQueue):
    """OpenAI's batch API (files + batches) through the ``openai`` SDK."""

    base: str
    completion_window: str
    max_bytes: int = 190_000_000  # OpenAI: an input file of at most 200 MB

    def line(self, custom_id: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        body = {"model": self.name, "messages": messages, **openai_path.wire_params(self.base, self.name, params)}
        return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}

    def _client(self) -> Any:
        if self._sdk is None:
            import openai

            # the control calls (upload, create, poll, download) may use the SDK's own retries;
            # the requests inside a batch are retried (and counted) by the model client
            self._sdk = openai.AsyncOpenAI(base_url=self.base, api_key=self.key or "none", max_retries=3, timeout=120.0)
        return self._sdk

    async def _batch(self, entries: list[_Entry]) -> dict[str, Any]:
        client = self._client()
        lines = "".join(json.dumps(e.line, ensure_ascii=False) + "\n" for e in entries)
        upload = await client.files.create(file=("magnet-batch.jsonl", lines.encode("utf-8"), "application/jsonl"), purpose="batch")
        batch = await client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window=self.completion_window
        )
        self.submitted.append(batch.id)
        log.info("batch %s: %d requests submitted", batch.id, len(entries))
        deadline = time.monotonic() + self.timeout_s
        while batch.status not in DONE:
            if time.monotonic() > deadline:
                with contextlib.suppress(Exception):  # best effort; its requests are retried either way
                    await client.batches.cancel(batch.id)
                raise TimeoutError(f"batch {batch.id} not done after {self.timeout_s:g}s")
            await asyncio.sleep(self.poll_s)
            batch = await client.batches.retrieve(batch.id)
        log.info("batch %s: %s", batch.id, batch.status)
        results: dict[str, Any] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await client.files.content(file_id)
            for raw in content.text.splitlines():
                if raw.strip():
                    line = json.loads(raw)
                    results[line.get("custom_id")] = _outcome(line)
        return results


def _outcome(line: dict[str, Any]) -> Any:
    """A completion body, or the exception the client classifies, for one result line."""
    response = line.get("response") or {}
    error = line.get("error")
    status = int(response.get("status_code") or (0 if error else 200))
    body = response.get("body")
    if status != 200 or error:
        message = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = str(body["error"].get("message") or "")
        elif isinstance(error, dict):
            message = str(error.get("message") or error.get("code") or "")
        return HTTPStatusError(status or 500, message[:300] or "failed in the batch")
    if not isinstance(body, dict) or not body.get("choices") or not isinstance(body["choices"][0], dict):
        return MalformedResponse("the batch result is not a chat completion")
    return body
