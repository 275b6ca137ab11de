"""Runs tasks over items: offline, or through the model client (LLM layer).

``TaskRunner.run(task, items)`` returns one :class:`TaskResult` per item, in order: a value,
or a reject with its reason. It never raises for a bad answer and never drops an item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, Sequence, TypeVar

from pydantic import BaseModel, Field

from magnet_lib.llm.task import Task
from magnet_lib.models import OFFLINE
from magnet_lib.settings import LLMSettings

O = TypeVar("O", bound=BaseModel)


class TaskResult(BaseModel, Generic[O]):
    value: O | None = None
    reject_reason: str | None = None
    generator: str = OFFLINE
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.value is not None


class TaskStats(BaseModel):
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    reasks: int = 0
    rejects: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    offline_items: int = 0
    reject_reasons: dict[str, int] = Field(default_factory=dict)


class TaskRunner:
    """Offline-only runner; the LLM layer adds the model path (client, cache, accounting)."""

    def __init__(self, settings: LLMSettings | None = None, cache_dir: Path | None = None):
        self.settings = settings or LLMSettings()
        self.cache_dir = cache_dir
        self.stats: dict[str, TaskStats] = {}

    def model_for(self, task: Task) -> str | None:
        return self.settings.task_models.get(task.name) or self.settings.model

    def run(self, task: Task[Any, O], items: Sequence[BaseModel]) -> list[TaskResult[O]]:
        stats = self.stats.setdefault(task.name, TaskStats())
        results: list[TaskResult[O]] = []
        for item in items:
            try:
                results.append(TaskResult(value=task.offline(item)))
                stats.offline_items += 1
            except Exception as exc:  # an offline failure is a reject, never a crash
                reason = f"offline {task.name} failed: {type(exc).__name__}: {exc}"
                stats.rejects += 1
                stats.reject_reasons[reason[:80]] = stats.reject_reasons.get(reason[:80], 0) + 1
                results.append(TaskResult(reject_reason=reason))
        return results

    def metadata(self) -> dict[str, Any]:
        """Per-task accounting, ready for Dagster metadata (no secrets)."""
        return {name: s.model_dump() for name, s in self.stats.items()}
