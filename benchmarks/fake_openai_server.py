"""A standalone fake OpenAI-compatible chat endpoint for client benchmarks, in its own process.

    python benchmarks/fake_openai_server.py --latency 0.2      # prints "PORT <n>" and serves

``POST /v1/chat/completions`` answers after ``--latency`` seconds with a valid ``classify_tool``
answer: the category the prompt says the function was filed under (the line ``Filed under
category: X``) and a fixed class. Any other prompt gets ``{"category": "general", ...}``.

It is a plain asyncio HTTP/1.1 server (keep-alive, Content-Length bodies), no framework, so
its own CPU per request stays small next to the clients'. It keeps counts for the benchmark:
``GET /stats`` returns requests, the most in flight at once, the time-averaged number in
flight while any was (busy slots), and its own CPU seconds; ``POST /reset`` zeroes them.
Nothing from Magnet is imported: both clients (Magnet's and Curator's) see the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
import time

_FILED = re.compile(r"Filed under category: ([^\n]+)")


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.area = 0.0  # integral of in_flight over time
        self.busy_s = 0.0  # time with at least one request in flight
        self.stamp = time.monotonic()
        self.first = None
        self.last = None
        self.cpu0 = time.process_time()

    def _advance(self) -> None:
        now = time.monotonic()
        dt = now - self.stamp
        self.area += self.in_flight * dt
        if self.in_flight:
            self.busy_s += dt
        self.stamp = now

    def enter(self) -> None:
        self._advance()
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        now = time.monotonic()
        self.first = self.first if self.first is not None else now
        self.last = now

    def leave(self) -> None:
        self._advance()
        self.in_flight -= 1

    def report(self) -> dict:
        self._advance()
        return {
            "requests": self.requests,
            "max_in_flight": self.max_in_flight,
            "mean_in_flight_while_busy": round(self.area / self.busy_s, 2) if self.busy_s else 0.0,
            "busy_s": round(self.busy_s, 3),
            "first_to_last_arrival_s": round((self.last or 0) - (self.first or 0), 3),
            "first_arrival": self.first,  # time.monotonic(): the same clock in every process of the machine
            "last_arrival": self.last,
            "server_cpu_s": round(time.process_time() - self.cpu0, 3),
            "server_cpu_ms_per_request": round(1000 * (time.process_time() - self.cpu0) / max(1, self.requests), 3),
        }


STATS = Stats()
LATENCY = 0.2


def _answer(body: dict) -> str:
    text = ""
    for message in body.get("messages") or []:
        if message.get("role") == "user":
            text = str(message.get("content") or "")
    found = _FILED.search(text)
    category = found.group(1).strip() if found else "general"
    if category == "(none)":
        category = "general"
    return json.dumps({"category": category, "tool_class": "Benchmark tools"})


class HTTP(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path = head[0].split(" ")[:2]
            self.handle(method, path, body)

    def send(self, status: str, payload: bytes) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(payload)).encode() + b"\r\nconnection: keep-alive\r\n\r\n" + payload
        )  # fmt: skip

    def handle(self, method: str, path: str, body: bytes) -> None:
        if path.endswith("/chat/completions") and method == "POST":
            request = json.loads(body)
            STATS.enter()
            text = _answer(request)
            prompt_tokens = sum(len(str(m.get("content") or "")) for m in request.get("messages") or []) // 4 + 1
            completion_tokens = len(text) // 4 + 1
            payload = json.dumps(
                {
                    "id": f"chatcmpl-{STATS.requests}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": request.get("model", ""),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
            ).encode()

            def reply() -> None:
                STATS.leave()
                self.send("200 OK", payload)

            asyncio.get_running_loop().call_later(LATENCY, reply)
        elif path.endswith("/stats"):
            self.send("200 OK", json.dumps(STATS.report()).encode())
        elif path.endswith("/reset"):
            STATS.reset()
            self.send("200 OK", b"{}")
        elif path.endswith("/models"):
            self.send("200 OK", json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}).encode())
        else:
            self.send("404 Not Found", b'{"error": {"message": "not found"}}')


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HTTP, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    global LATENCY
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    LATENCY = args.latency
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
