"""Support for the LLM-layer tests: a tiny echo task with its own prompt folder, the local test
server as a fixture, and runners pointed at it.

Everything goes through LiteLLM and real HTTP to :class:`magnet_lib.testing.server.TestServer`
on 127.0.0.1; nothing is mocked. Retries are made fast (short backoff, short Retry-After).
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from magnet_lib.llm import ParseError, Task, TaskRunner, extract_json
from magnet_lib.settings import LLMSettings
from magnet_lib.testing.server import TestServer

#: the route a vLLM user takes; the test server speaks the same protocol
TEST_MODEL = "hosted_vllm/magnet-test"
TEST_KEY = "sk-test-not-a-secret"

ECHO_TEMPLATE = """### system
You repeat words. Answer with JSON only: {"echo": "<the word>", "length": <its length>}
### user
Repeat the word {{ word }}.
"""


class EchoIn(BaseModel):
    word: str


class EchoOut(BaseModel):
    echo: str
    length: int


class EchoTask(Task[EchoIn, EchoOut]):
    """A task small enough to read in one glance; its prompt lives in a temporary folder."""

    name: ClassVar[str] = "echo"
    template: ClassVar[str] = "echo.md"
    input_model = EchoIn
    output_model = EchoOut

    def __init__(self, prompts_dir: Path, name: str | None = None):
        self.prompts_dir = prompts_dir  # type: ignore[misc]
        if name:
            self.name = name  # type: ignore[misc]
            self.template = f"{name}.md"  # type: ignore[misc]

    def parse(self, text: str, item: EchoIn) -> EchoOut:
        out = self.validate_output(extract_json(text))
        if out.echo != item.word:
            raise ParseError(f"echo must be '{item.word}', got '{out.echo}'")
        return out

    def offline(self, item: EchoIn) -> EchoOut:
        return EchoOut(echo=item.word, length=len(item.word))


def make_echo(prompts_dir: Path, name: str = "echo", template: str = ECHO_TEMPLATE) -> EchoTask:
    prompts_dir.mkdir(parents=True, exist_ok=True)
    (prompts_dir / f"{name}.md").write_text(template)
    return EchoTask(prompts_dir, name)


def words(n: int, prefix: str = "w") -> list[EchoIn]:
    return [EchoIn(word=f"{prefix}{i}") for i in range(n)]


def make_runner(server: TestServer | None, cache_dir: Path | None, **overrides: Any) -> TaskRunner:
    """A runner against ``server`` with fast retries (``overrides`` go to LLMSettings)."""
    values: dict[str, Any] = {
        "model": TEST_MODEL,
        "api_base": server.url if server else None,
        "api_key": TEST_KEY,
        "timeout_s": 2.0,
        "max_retries": 4,
        "retry_budget_s": 30.0,
        "concurrency": 16,
    }
    values.update(overrides)
    return TaskRunner(LLMSettings(**values), cache_dir=cache_dir, backoff_base_s=0.02, backoff_max_s=0.2)


@pytest.fixture
def llm_server():
    with TestServer(retry_after_s=0.4, hang_s=10) as server:
        yield server


@pytest.fixture
def echo(tmp_path) -> EchoTask:
    return make_echo(tmp_path / "prompts")
