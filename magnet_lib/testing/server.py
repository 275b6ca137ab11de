"""A local OpenAI-compatible server that answers every task with its offline implementation.

It serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1 (a free port)
from a background thread (uvicorn + Starlette, hundreds of concurrent requests), so the whole
pipeline runs in LLM mode, through LiteLLM and real HTTP, without a model::

    with TestServer(latency_s=0.2) as server:
        settings = LLMSettings(model="openai/magnet-test", api_base=server.url, api_key="sk-test")
        results = TaskRunner(settings, cache_dir=...).run(task, items)

How it knows what to answer: the :class:`~magnet_lib.llm.runner.TaskRunner` records each
prompt it renders in a process-global registry (:mod:`magnet_lib.testing.registry`, active only
while a server runs); the server looks up the messages it receives (re-ask turns stripped)
and answers ``task.answer_text(task.offline_sample(item, 0))``. **The server must therefore
run in the same process as the runner** (tests and benchmarks do). A prompt it does not know
gets the plain answer ``OK``.

Faults, for tests and benchmarks, by rate (``fault_rate`` with ``fault_kinds``, seeded) or
scripted (:meth:`TestServer.script`, consumed in order, optionally for one task only):

- ``rate_limit``: 429 with ``Retry-After: retry_after_s``
- ``server_error``: 500
- ``hang``: no answer until the client gives up (or ``hang_s``)
- ``malformed``: 200 with a body that is not JSON
- ``invalid_answer``: a well-formed completion whose text no task parser accepts

The server counts requests (in total and per task), faults, the most requests in flight at
once, and keeps the ``Authorization`` headers it saw (for the secrets test).

It also serves OpenAI's batch API (``POST /v1/files``, ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``) for the client's batch mode: every line of an
uploaded batch is answered like a chat request (and counted as one, faults included: a 429 or
500 lands in the error file, ``malformed`` gives a body that is not a completion, ``hang`` a
line missing from both files, as when a batch expires). A batch reports ``in_progress``
until ``batch_latency_s`` has passed, then ``completed``.

And Anthropic's side, for ``anthropic/<model>`` with ``api_base=server.root``: the Messages API
(``POST /v1/messages``, what LiteLLM sends online) and the Message Batches API (``POST
/v1/messages/batches``, ``GET /v1/messages/batches/{id}``, ``.../results``, ``.../cancel``).
Both check the ``x-api-key`` (401 without) and ``anthropic-version`` (400 without) headers
and validate the request as Anthropic does in the parts a client converts (no unknown
top-level parameters, ``max_tokens`` given, roles ``user``/``assistant`` only, no empty text
blocks, tool names of ``[a-zA-Z0-9_-]``, a forced tool that exists): an invalid request is a 400
``invalid_request_error`` online and an ``errored`` line in a batch. A forced tool is answered
with a ``tool_use`` block whose input is the JSON answer; a task whose answer is tool calls
(``{"content", "tool_calls"}``) gets ``tool_use`` blocks when it sent tools. Faults in a batch:
``rate_limit`` / ``server_error`` / ``overloaded`` / ``invalid_request`` become ``errored`` lines
(``rate_limit_error``, ``api_error``, ``overloaded_error``, ``invalid_request_error``), ``hang`` an
``expired`` line, ``canceled`` a ``canceled`` one, ``malformed`` a message without content.
The ``x-api-key`` values seen are kept in ``api_keys``, the ``anthropic-version`` headers counted in ``anthropic_versions``.

Besides the random ``FAULT_KINDS``, scripts may use ``overloaded`` (529 at Anthropic, 503 at
OpenAI), ``invalid_request`` (400) and ``canceled`` (a canceled line in an Anthropic batch, a
missing line in an OpenAI batch, a hang online).

A request with a
``response_format`` schema (structured outputs, :mod:`magnet_lib.llm.structured`) is counted
per task in ``structured``, and the answer is checked against the schema the way a server
that enforces it would guarantee: a mismatch is kept in ``schema_violations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from magnet_lib.testing import registry

FAULT_KINDS = ("rate_limit", "server_error", "hang", "malformed", "invalid_answer")
#: kinds only scripts use (a random fault is one of FAULT_KINDS)
SCRIPT_KINDS = FAULT_KINDS + ("overloaded", "invalid_request", "canceled")
#: API versions the fake knows; 2026-10-21 removed temperature, top_p and top_k from the Messages API
ANTHROPIC_VERSIONS = ("2023-06-01", "2026-10-21")
#: top-level Messages API parameters the fake accepts (Anthropic rejects others: "Extra inputs are not permitted")
ANTHROPIC_PARAMS = frozenset(
    ("model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences", "tools", "tool_choice",
     "metadata", "stream", "thinking", "service_tier", "output_format", "output_config")
)  # fmt: skip
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
UNKNOWN_TASK = "<unknown>"


@dataclass
class RequestRecord:
    """One request the server received."""

    at: float  # time.monotonic() when it arrived
    task: str
    fault: str | None
    model: str
    messages: int


class TestServer:
    """The fake model endpoint. Use as a context manager or call ``start`` / ``stop``.

    ``latency_s``: seconds every answer takes. ``fault_rate``: share of requests that get a
    random fault out of ``fault_kinds``. ``retry_after_s``: the ``Retry-After`` of a 429.
    ``hang_s``: the longest a hanging request waits for the client to give up.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[str] = FAULT_KINDS,
        retry_after_s: float = 1.0,
        hang_s: float = 30.0,
        invalid_answer: str = "Sorry, I am not sure what you are asking for.",
        seed: int = 0,
        batch_latency_s: float = 0.0,
    ):
        self.latency_s = latency_s
        self.batch_latency_s = batch_latency_s
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.message_batches: dict[str, dict[str, Any]] = {}
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        unknown = set(self.fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.invalid_answer = invalid_answer
        self._rng = random.Random(seed)
        self._scripts: dict[str | None, deque[str | None]] = {}
        self._lock = threading.Lock()
        self.reset_counts()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ control
    def reset_counts(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.requests = 0
            self.by_task: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.in_flight = 0
            self.max_in_flight = 0
            self.records: list[RequestRecord] = []
            self.authorizations: set[str] = set()
            self.api_keys: set[str] = set()
            self.anthropic_versions: Counter[str | None] = Counter()
            self.invalid_requests: list[str] = []
            self.structured: Counter[str] = Counter()
            self.schema_violations: list[tuple[str, str]] = []

    def script(self, *kinds: str | None, task: str | None = None) -> None:
        """Queue the outcomes of the next requests (of ``task`` only, when given): fault kinds,
        or None for a normal answer. Scripts go before ``fault_rate``."""
        for kind in kinds:
            if kind is not None and kind not in SCRIPT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(SCRIPT_KINDS)}")
        with self._lock:
            self._scripts.setdefault(task, deque()).extend(kinds)

    @property
    def root(self) -> str:
        """The ``api_base`` for Anthropic models (LiteLLM and the SDK append ``/v1/messages``)."""
        if self.port is None:
            raise RuntimeError("the test server is not running; call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The ``api_base`` for LiteLLM (``.../v1``)."""
        if self.port is None:
            raise RuntimeError("the test server is not running; call start() first")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TestServer:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say TCP,
        # and without it every keep-alive request waits 40 ms for a delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/files", self._upload, methods=["POST"]),
                Route("/v1/files/{file_id}/content", self._file_content, methods=["GET"]),
                Route("/v1/batches", self._create_batch, methods=["POST"]),
                Route("/v1/batches/{batch_id}", self._get_batch, methods=["GET"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/batches", self._create_message_batch, methods=["POST"]),
                Route("/v1/messages/batches/{batch_id}", self._get_message_batch, methods=["GET"]),
                Route("/v1/messages/batches/{batch_id}/results", self._message_batch_results, methods=["GET"]),
                Route("/v1/messages/batches/{batch_id}/cancel", self._cancel_message_batch, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=1, backlog=2048, timeout_keep_alive=30,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])), name="magnet-llm-testserver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        registry.activate()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
            registry.deactivate()

    def __enter__(self) -> TestServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving
    def _next_fault(self, task_name: str) -> str | None:
        with self._lock:
            for key in (task_name, None):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.fault_kinds)
        return None

    def _answer(self, messages: list[dict[str, Any]]) -> tuple[str, str]:
        found = registry.lookup(messages)
        if found is None:
            return UNKNOWN_TASK, "OK"
        task, item = found
        return task.name, task.answer_text(task.offline_sample(item, 0))

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "magnet-test", "object": "model", "owned_by": "magnet"}]})

    def _record(
        self,
        task_name: str,
        fault: str | None,
        model: str,
        messages: int,
        authorization: str | None,
        schema: dict[str, Any] | None = None,
        violation: str | None = None,
        api_key: str | None = None,
    ) -> None:
        with self._lock:
            if api_key:
                self.api_keys.add(api_key)
            if schema is not None:
                self.structured[task_name] += 1
            if violation:
                self.schema_violations.append((task_name, violation))
            self.requests += 1
            self.by_task[task_name] += 1
            if fault:
                self.faults[fault] += 1
            self.records.append(RequestRecord(time.monotonic(), task_name, fault, model, messages))
            if authorization:
                self.authorizations.add(authorization)

    def _completion(self, model: str, messages: list[dict[str, Any]], text: str) -> dict[str, Any]:
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1
        return {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text) // 4 + 1,
                "total_tokens": prompt_tokens + len(text) // 4 + 1,
            },
        }

    def _text(self, messages: list[dict[str, Any]]) -> tuple[str, str]:
        try:
            return self._answer(messages)
        except Exception as exc:  # an offline implementation failed: the model "errs"
            return UNKNOWN_TASK, f"error: {type(exc).__name__}: {exc}"

    @contextlib.asynccontextmanager
    async def _answering(self, request: Request, fault: str | None):
        """One answer in flight (counted), after the endpoint's latency; a hanging fault holds
        the request until the client gives up and yields the 504 to return (else None)."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            hung = None
            if fault in ("hang", "canceled"):
                deadline = time.monotonic() + self.hang_s
                while time.monotonic() < deadline and not await request.is_disconnected():
                    await asyncio.sleep(0.05)
                hung = Response(status_code=504)
            elif self.latency_s:
                await asyncio.sleep(self.latency_s)
            yield hung
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        messages = body.get("messages") or []
        model = str(body.get("model", ""))
        task_name, text = self._text(messages)
        fault = self._next_fault(task_name)
        schema = _schema_of(body.get("response_format"))
        violation = _violation(schema, text) if schema is not None else None
        self._record(task_name, fault, model, len(messages), request.headers.get("authorization"), schema, violation)
        async with self._answering(request, fault) as hung:
            if hung is not None:
                return hung
            if fault == "rate_limit":
                return JSONResponse(
                    {"error": {"message": "rate limit reached, slow down", "type": "rate_limit_error", "code": 429}},
                    status_code=429,
                    headers={"Retry-After": f"{self.retry_after_s:g}"},
                )
            if fault == "server_error":
                return JSONResponse({"error": {"message": "internal error", "type": "server_error"}}, status_code=500)
            if fault == "overloaded":
                return JSONResponse({"error": {"message": "the engine is overloaded", "type": "server_error"}}, status_code=503)
            if fault == "invalid_request":
                return JSONResponse({"error": {"message": "invalid request (scripted)", "type": "invalid_request_error"}}, status_code=400)
            if fault == "malformed":
                return Response('{"id": "chatcmpl-broken", "choices": [{"message": ', media_type="application/json")
            if fault == "invalid_answer":
                text = self.invalid_answer
            return JSONResponse(self._completion(model, messages, text))

    # ------------------------------------------------------------------ the batch API
    async def _upload(self, request: Request) -> Response:
        form = await request.form()
        upload = form["file"]
        data = await upload.read()  # type: ignore[union-attr]
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = data
        return JSONResponse(self._file_object(file_id, getattr(upload, "filename", "batch.jsonl"), str(form.get("purpose", "batch"))))

    def _file_object(self, file_id: str, filename: str = "batch.jsonl", purpose: str = "batch") -> dict[str, Any]:
        return {
            "id": file_id, "object": "file", "bytes": len(self.files[file_id]), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "status": "processed",
        }  # fmt: skip

    async def _file_content(self, request: Request) -> Response:
        data = self.files.get(request.path_params["file_id"])
        if data is None:
            return JSONResponse({"error": {"message": "no such file"}}, status_code=404)
        return Response(data, media_type="application/jsonl")

    def _batch_line(self, line: dict[str, Any], authorization: str | None) -> tuple[str, dict[str, Any] | None]:
        """``('output' | 'error' | 'none', result line)`` for one request of a batch."""
        body = line.get("body") or {}
        messages = body.get("messages") or []
        model = str(body.get("model", ""))
        task_name, text = self._text(messages)
        fault = self._next_fault(task_name)
        self._record(task_name, fault, model, len(messages), authorization)
        custom_id = line.get("custom_id")
        if fault in ("hang", "canceled"):
            return "none", None
        if fault in ("rate_limit", "server_error", "overloaded", "invalid_request"):
            status = {"rate_limit": 429, "server_error": 500, "overloaded": 503, "invalid_request": 400}[fault]
            error = {"error": {"message": "rate limit reached" if status == 429 else f"{fault} (scripted)", "type": fault}}
            return "error", {
                "id": f"req-{custom_id}",
                "custom_id": custom_id,
                "response": {"status_code": status, "body": error},
                "error": None,
            }
        if fault == "malformed":
            completion: Any = '{"id": "chatcmpl-broken", "choices": [{"message": '
        else:
            completion = self._completion(model, messages, self.invalid_answer if fault == "invalid_answer" else text)
        return "output", {
            "id": f"req-{custom_id}",
            "custom_id": custom_id,
            "response": {"status_code": 200, "body": completion},
            "error": None,
        }

    async def _create_batch(self, request: Request) -> Response:
        spec = await request.json()
        data = self.files.get(spec.get("input_file_id", ""))
        if data is None:
            return JSONResponse({"error": {"message": "no such input file"}}, status_code=400)
        authorization = request.headers.get("authorization")
        outputs: list[str] = []
        errors: list[str] = []
        for raw in data.decode("utf-8").splitlines():
            if raw.strip():
                where, result = self._batch_line(json.loads(raw), authorization)
                if result is not None:
                    (outputs if where == "output" else errors).append(json.dumps(result))
        with self._lock:
            batch_id = f"batch-{len(self.batches) + 1}"
            output_id, error_id = f"file-{batch_id}-out", f"file-{batch_id}-err"
            self.files[output_id] = ("\n".join(outputs) + "\n").encode() if outputs else b""
            self.files[error_id] = ("\n".join(errors) + "\n").encode() if errors else b""
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": spec.get("endpoint", "/v1/chat/completions"),
                "input_file_id": spec["input_file_id"], "completion_window": spec.get("completion_window", "24h"),
                "status": "in_progress", "created_at": int(time.time()),
                "output_file_id": output_id if outputs else None, "error_file_id": error_id if errors else None,
                "request_counts": {"total": len(outputs) + len(errors), "completed": len(outputs), "failed": len(errors)},
                "_ready_at": time.monotonic() + self.batch_latency_s,
            }  # fmt: skip
        return JSONResponse(self._batch_object(batch_id))

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        shown = {k: v for k, v in batch.items() if not k.startswith("_")}
        if time.monotonic() < batch["_ready_at"]:
            shown.update(output_file_id=None, error_file_id=None)
        else:
            shown["status"] = "completed"
            shown["completed_at"] = int(time.time())
        return shown

    async def _get_batch(self, request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        if batch_id not in self.batches:
            return JSONResponse({"error": {"message": "no such batch"}}, status_code=404)
        return JSONResponse(self._batch_object(batch_id))

    # ------------------------------------------------------------------ Anthropic
    def _anthropic_auth(self, request: Request) -> Response | None:
        """Anthropic's header checks: a 401 without ``x-api-key``, a 400 without ``anthropic-version``."""
        if not request.headers.get("x-api-key"):
            return _anthropic_error("authentication_error", "x-api-key header is required", 401)
        version = request.headers.get("anthropic-version")
        with self._lock:
            self.anthropic_versions[version] += 1
        if not version:
            return _anthropic_error("invalid_request_error", "anthropic-version: header is required", 400)
        if version not in ANTHROPIC_VERSIONS:
            return _anthropic_error("invalid_request_error", f"anthropic-version: unknown version {version!r}", 400)
        return None

    def _anthropic_answer(self, params: dict[str, Any], api_key: str | None, version: str) -> tuple[str | None, dict[str, Any]]:
        """``(fault, outcome)`` for one Messages request: ``outcome`` is the Message, or
        ``{"error": {type, message}}``; counted like a chat request."""
        messages = _anthropic_as_chat(params)
        task_name, text = self._text(messages)
        invalid = _anthropic_invalid(params, version)
        fault = None if invalid else self._next_fault(task_name)
        self._record(task_name, fault, str(params.get("model", "")), len(messages), None, api_key=api_key)
        if invalid:
            with self._lock:
                self.invalid_requests.append(invalid)
            return None, {"error": {"type": "invalid_request_error", "message": invalid}}
        errors = {
            "rate_limit": ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
            "server_error": ("api_error", "Internal server error"),
            "overloaded": ("overloaded_error", "Overloaded"),
            "invalid_request": ("invalid_request_error", "invalid request (scripted)"),
        }
        if fault in errors:
            etype, message = errors[fault]
            return fault, {"error": {"type": etype, "message": message}}
        if fault == "invalid_answer":
            text = self.invalid_answer
        return fault, self._anthropic_message(params, messages, text)

    def _anthropic_message(self, params: dict[str, Any], messages: list[dict[str, Any]], text: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        stop = "end_turn"
        choice = params.get("tool_choice") or {}
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            data = None
        if choice.get("type") == "tool" and isinstance(data, dict):  # a forced tool: the answer is its input
            content, stop = [{"type": "tool_use", "id": "toolu_forced", "name": choice["name"], "input": data}], "tool_use"
        elif params.get("tools") and isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
            content = [{"type": "text", "text": data["content"]}] if data.get("content") else []
            for i, call in enumerate(data["tool_calls"]):
                content.append({"type": "tool_use", "id": f"toolu_{i}", "name": call.get("name"), "input": call.get("arguments") or {}})
            stop = "tool_use"
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1
        return {
            "id": f"msg_{self.requests}", "type": "message", "role": "assistant", "model": str(params.get("model", "")),
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": len(text) // 4 + 1},
        }  # fmt: skip

    async def _messages(self, request: Request) -> Response:
        refused = self._anthropic_auth(request)
        if refused is not None:
            return refused
        params = await request.json()
        fault, outcome = self._anthropic_answer(params, request.headers.get("x-api-key"), request.headers["anthropic-version"])
        async with self._answering(request, fault) as hung:
            if hung is not None:
                return hung
            if fault == "malformed":
                return Response('{"id": "msg_broken", "content": [{"type": ', media_type="application/json")
            if "error" in outcome:
                status = {"rate_limit_error": 429, "api_error": 500, "overloaded_error": 529}.get(outcome["error"]["type"], 400)
                headers = {"retry-after": f"{self.retry_after_s:g}"} if status == 429 else None
                return _anthropic_error(outcome["error"]["type"], outcome["error"]["message"], status, headers)
            return JSONResponse(outcome)

    async def _create_message_batch(self, request: Request) -> Response:
        refused = self._anthropic_auth(request)
        if refused is not None:
            return refused
        spec = await request.json()
        requests = spec.get("requests") if isinstance(spec, dict) else None
        if not isinstance(requests, list) or not requests:
            return _anthropic_error("invalid_request_error", "requests: Field required (a non-empty list)", 400)
        ids = [r.get("custom_id") if isinstance(r, dict) else None for r in requests]
        if any(not isinstance(i, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) for i in ids) or len(set(ids)) != len(ids):
            return _anthropic_error(
                "invalid_request_error", "requests: every custom_id must be unique and match ^[a-zA-Z0-9_-]{1,64}$", 400
            )
        api_key = request.headers.get("x-api-key")
        results: list[dict[str, Any]] = []
        counts = Counter()
        for r in requests:
            params = r.get("params") if isinstance(r.get("params"), dict) else {}
            fault, outcome = self._anthropic_answer(params, api_key, request.headers["anthropic-version"])
            if fault == "hang":
                result: dict[str, Any] = {"type": "expired"}
            elif fault == "canceled":
                result = {"type": "canceled"}
            elif "error" in outcome:
                result = {"type": "errored", "error": {"type": "error", "error": outcome["error"]}}
            elif fault == "malformed":
                result = {"type": "succeeded", "message": {"id": outcome["id"], "type": "message", "role": "assistant"}}
            else:
                result = {"type": "succeeded", "message": outcome}
            counts[result["type"]] += 1
            results.append({"custom_id": r["custom_id"], "result": result})
        with self._lock:
            batch_id = f"msgbatch_{len(self.message_batches) + 1:04d}"
            self.message_batches[batch_id] = {
                "requests": requests, "results": results, "counts": counts, "created_at": _iso(time.time()), "_ready_at": time.monotonic() + self.batch_latency_s,
                "_cancel_at": None,
            }  # fmt: skip
        return JSONResponse(self._message_batch_object(batch_id))

    def _message_batch_object(self, batch_id: str) -> dict[str, Any]:
        batch = self.message_batches[batch_id]
        ended = time.monotonic() >= batch["_ready_at"]
        counts = batch["counts"]
        total = sum(counts.values())
        return {
            "id": batch_id, "type": "message_batch", "processing_status": "ended" if ended else ("canceling" if batch["_cancel_at"] else "in_progress"),
            "request_counts": {
                "processing": 0 if ended else total, **{k: (counts[k] if ended else 0) for k in ("succeeded", "errored", "canceled", "expired")}
            },
            "ended_at": _iso(time.time()) if ended else None, "created_at": batch["created_at"], "expires_at": batch["created_at"],
            "archived_at": None, "cancel_initiated_at": batch["_cancel_at"],
            "results_url": f"{self.root}/v1/messages/batches/{batch_id}/results" if ended else None,
        }  # fmt: skip

    async def _get_message_batch(self, request: Request) -> Response:
        refused = self._anthropic_auth(request)
        if refused is not None:
            return refused
        batch_id = request.path_params["batch_id"]
        if batch_id not in self.message_batches:
            return _anthropic_error("not_found_error", f"no message batch {batch_id}", 404)
        return JSONResponse(self._message_batch_object(batch_id))

    async def _message_batch_results(self, request: Request) -> Response:
        refused = self._anthropic_auth(request)
        if refused is not None:
            return refused
        batch = self.message_batches.get(request.path_params["batch_id"])
        if batch is None:
            return _anthropic_error("not_found_error", "no such message batch", 404)
        if time.monotonic() < batch["_ready_at"]:
            return _anthropic_error("invalid_request_error", "the message batch is still processing", 400)
        lines = "".join(json.dumps(line) + "\n" for line in batch["results"])
        return Response(lines.encode(), media_type="application/binary")

    async def _cancel_message_batch(self, request: Request) -> Response:
        refused = self._anthropic_auth(request)
        if refused is not None:
            return refused
        batch_id = request.path_params["batch_id"]
        batch = self.message_batches.get(batch_id)
        if batch is None:
            return _anthropic_error("not_found_error", "no such message batch", 404)
        batch["_cancel_at"] = batch["_cancel_at"] or _iso(time.time())
        return JSONResponse(self._message_batch_object(batch_id))


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def _anthropic_error(etype: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"type": "error", "error": {"type": etype, "message": message}}, status_code=status, headers=headers)


def _anthropic_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text") or "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _anthropic_as_chat(params: dict[str, Any]) -> list[dict[str, Any]]:
    """A Messages request as the chat messages a runner rendered (for the registry lookup):
    one system message per system text block, then the turns' text."""
    system = params.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else (system or [])
    out = [{"role": "system", "content": _anthropic_text([b])} for b in blocks if isinstance(b, dict)]
    for m in params.get("messages") or []:
        if isinstance(m, dict):
            out.append({"role": m.get("role"), "content": _anthropic_text(m.get("content"))})
    return out


def _anthropic_invalid(params: dict[str, Any], version: str = "2023-06-01") -> str | None:
    """Why Anthropic would refuse ``params`` (the checks that catch a wrong conversion), or None."""
    removed = ("temperature", "top_p", "top_k") if version >= "2026-10-21" else ()
    extra = sorted(k for k in params if k not in ANTHROPIC_PARAMS or k in removed)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    if not isinstance(params.get("model"), str) or not params["model"]:
        return "model: Field required"
    if not isinstance(params.get("max_tokens"), int) or params["max_tokens"] < 1:
        return "max_tokens: Field required (an integer of at least 1)"
    temperature = params.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 1):
        return "temperature: Input should be less than or equal to 1"
    system = params.get("system")
    bad_block = (
        any(not isinstance(b, dict) or b.get("type") != "text" or not b.get("text") for b in system) if isinstance(system, list) else True
    )
    if system is not None and not isinstance(system, str) and bad_block:
        return "system: a string or a list of non-empty text blocks"
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required (a non-empty list)"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            role = m.get("role") if isinstance(m, dict) else None
            return f"messages.{i}.role: Input should be 'user' or 'assistant' (got {role!r})"
        content = m.get("content")
        if isinstance(content, str):
            if not content:
                return f"messages.{i}: text content blocks must be non-empty"
        elif isinstance(content, list) and content:
            for j, b in enumerate(content):
                if not isinstance(b, dict) or b.get("type") not in ("text", "image", "document", "tool_use", "tool_result", "thinking"):
                    return f"messages.{i}.content.{j}.type: unknown content block type"
                if b["type"] == "text" and not b.get("text"):
                    return f"messages.{i}.content.{j}: text content blocks must be non-empty"
        else:
            return f"messages.{i}.content: a non-empty string or list of content blocks"
    names = set()
    for i, tool in enumerate(params.get("tools") or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not _TOOL_NAME.match(tool["name"]):
            return f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        if not isinstance(tool.get("input_schema"), dict) or tool["input_schema"].get("type") != "object":
            return f"tools.{i}.input_schema: an object schema (type 'object') is required"
        names.add(tool["name"])
    choice = params.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if choice["type"] == "tool" and choice.get("name") not in names:
            return f"tool_choice.name: no tool named {choice.get('name')!r} in tools"
    return None


def _schema_of(response_format: Any) -> dict[str, Any] | None:
    """The JSON Schema in a ``response_format`` (OpenAI ``json_schema`` or llama.cpp ``json_object``)."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema")
    if response_format.get("type") == "json_object":
        return response_format.get("schema")
    return None


def _violation(schema: dict[str, Any], text: str) -> str | None:
    """Why ``text`` is not a JSON value valid under ``schema`` (None when it is)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    return None if error is None else f"{'.'.join(map(str, error.absolute_path)) or 'answer'}: {error.message}"[:300]
