"""The driver of task coroutines: many items advance in lock-step, one batch per task.

A stage written as generators (an episode, a distillation) yields ``(task, item)`` requests
and receives each :class:`~magnet_lib.llm.runner.TaskResult`; :func:`run_interleaved` sends
all pending requests of one task to the runner at once, so a model sees a batch of
independent requests, never one at a time.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from pydantic import BaseModel

from magnet_lib.llm.runner import TaskResult, TaskRunner
from magnet_lib.llm.task import Task

#: what a task coroutine yields
Request = tuple[Task, BaseModel]


def run_interleaved(coroutines: Sequence[Generator[Request, TaskResult, Any]], runner: TaskRunner) -> list[Any]:
    """Run generators that yield ``(task, item)`` and receive the :class:`TaskResult`;
    each round sends every pending request of a task to ``runner.run`` in one batch.
    Returns each generator's return value, in order."""
    results: list[Any] = [None] * len(coroutines)
    pending: dict[int, Request] = {}

    def advance(index: int, value: TaskResult | None) -> None:
        gen = coroutines[index]
        try:
            pending[index] = gen.send(value) if value is not None else next(gen)
        except StopIteration as stop:
            pending.pop(index, None)
            results[index] = stop.value

    for i in range(len(coroutines)):
        advance(i, None)
    while pending:
        by_task: dict[str, list[int]] = {}
        tasks: dict[str, Task] = {}
        for index, (task, _) in pending.items():
            by_task.setdefault(task.name, []).append(index)
            tasks[task.name] = task
        for name, indices in by_task.items():
            outputs = runner.run(tasks[name], [pending[i][1] for i in indices])
            for index, output in zip(indices, outputs):
                advance(index, output)
    return results
