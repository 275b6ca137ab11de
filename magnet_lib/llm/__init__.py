"""The LLM layer: tasks (prompt template + parser + offline implementation), the model client
(a lean OpenAI-compatible path, LiteLLM for other providers, optional batch API) with limits and
retries, the response cache, and the runner that ties them together."""

from magnet_lib.llm.runner import TaskResult, TaskRunner, TaskStats
from magnet_lib.llm.task import ParseError, Task, extract_json

__all__ = ["ParseError", "Task", "TaskResult", "TaskRunner", "TaskStats", "extract_json"]
