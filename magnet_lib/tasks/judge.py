"""``judge_errors``: the error judge of the negative part of context distillation (paper
section 3.5): one turn of a student trajectory against the reference, answered as
``{"correct", "error_type", "reason"}``. Offline: the rules of :mod:`magnet_lib.judge`."""

from __future__ import annotations

import json
from typing import Any, Sequence

from magnet_lib.judge import JudgeItem, JudgeVerdict, judge_turn, message_calls
from magnet_lib.llm.task import ParseError, Task, extract_json
from magnet_lib.models import Message


def transcript(messages: Sequence[Message], limit: int = 600) -> str:
    """Messages as judge-readable lines: calls as call strings, outputs shortened."""
    lines = []
    for m in messages:
        role = m.get("role")
        if role == "assistant":
            calls = message_calls(m)
            if m.get("content"):
                lines.append(f"Assistant: {m['content']}")
            if calls:
                lines.append("Assistant calls: " + "; ".join(c.to_python() for _, c in calls))
        elif role == "tool":
            content = str(m.get("content", ""))
            lines.append(f"Output: {content[:limit]}{' ...' if len(content) > limit else ''}")
        elif role == "user":
            lines.append(f"User: {m.get('content', '')}")
    return "\n".join(lines) or "(nothing)"


class JudgeErrorsTask(Task[JudgeItem, JudgeVerdict]):
    name = "judge_errors"
    template = "judge_errors.md"
    input_model = JudgeItem
    output_model = JudgeVerdict
    temperature = 0.0

    def variables(self, item: JudgeItem) -> dict[str, Any]:
        functions = [
            {"name": f.get("name"), "parameters": list((f.get("parameters") or {}).get("properties", {}))}
            for f in (s.get("function", s) for s in item.tools)
        ]
        response = transcript(item.response)
        if item.malformed:
            response += "\n(unparsable tool call: " + item.malformed[0][:200] + ")"
        if item.truncated:
            response += "\n(the response was cut off)"
        return {
            "functions": json.dumps(functions, ensure_ascii=False),
            "history": transcript(item.history),
            "query": item.query,
            "label": item.label,
            "reference": transcript(item.reference),
            "response": response,
        }

    def parse(self, text: str, item: JudgeItem) -> JudgeVerdict:
        data = extract_json(text)
        if not isinstance(data, dict):
            raise ParseError('answer with one JSON object {"correct": ..., "error_type": ..., "reason": ...}')
        if isinstance(data.get("error_type"), str) and data["error_type"].strip().isdigit():
            data["error_type"] = int(data["error_type"])
        verdict = self.validate_output(data)
        if verdict.correct and verdict.error_type is not None:
            raise ParseError("a correct turn has error_type null")
        return verdict

    def offline(self, item: JudgeItem) -> JudgeVerdict:
        return judge_turn(item)
