"""The two LLM tasks of the local dependency graph (paper section 3.4, appendix prompts).

- ``judge_dependencies``: one target function and a batch of candidates; the model answers
  with a JSON adjacency list ``{"<target>": [{"name", "kind", "evidence"}, ...]}`` naming the
  candidates whose output the target depends on. Kind and evidence come back with each name.
- ``check_nested``: one target and the sources judged to feed it; per source the model answers
  ``yes`` or ``no`` with a reason: would a user leave ``dst`` unnamed because its value only
  comes from ``src``'s output?

Offline, both run the schema judge of :mod:`magnet_lib.dependency`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from magnet_lib.dependency import ProfileCache, judge_pair, nested_reason
from magnet_lib.llm.task import ParseError, Task, extract_json
from magnet_lib.models import EdgeKind, Tool

#: score of a model-judged edge by kind (the model is not asked for a number)
KIND_SCORE = {"full_input": 0.9, "partial_input": 0.7, "premise": 0.6}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _type_text(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {schema['items'].get('type', 'object')}"
    if "enum" in schema:
        return f"{kind} one of {', '.join(map(str, schema['enum'][:8]))}"
    return str(kind)


def signature_text(tool: Tool) -> str:
    """A function's inputs as prompt lines: name (type, required): description."""
    required = set(tool.required)
    lines = []
    for name, sub in tool.properties.items():
        sub = sub if isinstance(sub, dict) else {}
        flag = ", required" if name in required else ""
        lines.append(f"  - {name} ({_type_text(sub)}{flag}): {sub.get('description', '')}".rstrip(": "))
    return "\n".join(lines) or "  (no parameters)"


def outputs_text(tool: Tool, depth: int = 0, schema: dict[str, Any] | None = None, prefix: str = "") -> str:
    """A function's response fields as prompt lines (array items as ``field[].sub``)."""
    schema = tool.response if schema is None else schema
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict) or depth > 3:
        if prefix or not schema:
            return "" if prefix else "  (no response schema)"
        return f"  - <response> ({_type_text(schema)}): {schema.get('description', '')}"
    lines = []
    for name, sub in props.items():
        sub = sub if isinstance(sub, dict) else {}
        path = f"{prefix}{name}"
        items = sub.get("items")
        if sub.get("type") == "array" and isinstance(items, dict) and isinstance(items.get("properties"), dict):
            lines.append(outputs_text(tool, depth + 1, items, path + "[]."))
        elif sub.get("type") == "object" and isinstance(sub.get("properties"), dict):
            lines.append(outputs_text(tool, depth + 1, sub, path + "."))
        else:
            lines.append(f"  - {path} ({_type_text(sub)}): {sub.get('description', '')}".rstrip(": "))
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------- judge_dependencies


class JudgeItem(_Model):
    target: Tool
    candidates: list[Tool]


class Related(_Model):
    name: str = Field(description="A candidate whose output the target depends on.")
    kind: EdgeKind
    evidence: str = Field(description="Which output field feeds which parameter, or why it is a premise.")
    score: float = Field(ge=0.0, le=1.0)


class JudgeAnswer(_Model):
    target: str
    related: list[Related] = Field(default_factory=list)


class JudgeDependenciesTask(Task[JudgeItem, JudgeAnswer]):
    name: ClassVar[str] = "judge_dependencies"
    template: ClassVar[str] = "judge_dependencies.md"
    input_model: ClassVar[type[BaseModel]] = JudgeItem
    output_model: ClassVar[type[BaseModel]] = JudgeAnswer
    temperature: ClassVar[float | None] = 0.0

    def __init__(self) -> None:
        self.profiles = ProfileCache()

    def variables(self, item: JudgeItem) -> dict[str, Any]:
        t = item.target
        return {
            "target_name": t.name,
            "target_description": t.description,
            "target_parameters": signature_text(t),
            "candidates": [
                {"name": c.name, "description": c.description, "inputs": ", ".join(c.properties) or "none", "outputs": outputs_text(c)}
                for c in item.candidates
            ],
        }

    def parse(self, text: str, item: JudgeItem) -> JudgeAnswer:
        data = extract_json(text)
        if not isinstance(data, dict):
            raise ParseError(f'answer with a JSON object {{"{item.target.name}": [...]}}')
        if item.target.name in data:
            listed = data[item.target.name]
        elif len(data) == 1:
            raise ParseError(f"the key of the answer must be the target '{item.target.name}', got '{next(iter(data))}'")
        else:
            raise ParseError(f"answer with one key, the target '{item.target.name}'")
        if not isinstance(listed, list):
            raise ParseError(f"the value of '{item.target.name}' must be a list of objects with name, kind, evidence")
        names = {c.name for c in item.candidates}
        related: dict[str, Related] = {}
        for entry in listed:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ParseError('every related candidate is an object {"name": ..., "kind": ..., "evidence": ...}')
            name = entry["name"]
            if name == item.target.name:
                raise ParseError(f"'{name}' is the target itself; a function is never its own dependency")
            if name not in names:
                raise ParseError(f"'{name}' is not one of the candidates: {', '.join(sorted(names))}")
            kind = entry.get("kind")
            if kind not in KIND_SCORE:
                raise ParseError(f"'{name}': kind must be one of premise, full_input, partial_input, got {kind!r}")
            evidence = entry.get("evidence")
            if not isinstance(evidence, str) or not evidence.strip():
                raise ParseError(f"'{name}': give the evidence (which output field feeds which parameter, or why)")
            related.setdefault(name, Related(name=name, kind=kind, evidence=evidence.strip(), score=KIND_SCORE[kind]))
        return JudgeAnswer(target=item.target.name, related=list(related.values()))

    def answer_text(self, output: JudgeAnswer) -> str:
        listed = [{"name": r.name, "kind": r.kind, "evidence": r.evidence} for r in output.related]
        return json.dumps({output.target: listed}, ensure_ascii=False)

    def offline(self, item: JudgeItem) -> JudgeAnswer:
        dst = self.profiles(item.target)
        related = []
        for candidate in item.candidates:
            verdict = judge_pair(self.profiles(candidate), dst)
            if verdict is not None:
                related.append(Related(name=candidate.name, kind=verdict.kind, evidence=verdict.evidence, score=verdict.score))
        return JudgeAnswer(target=item.target.name, related=related)


# --------------------------------------------------------------------------- check_nested


class NestedSource(_Model):
    tool: Tool
    kind: EdgeKind
    evidence: str


class NestedItem(_Model):
    target: Tool
    sources: list[NestedSource]


class NestedVerdict(_Model):
    source: str
    nested: bool
    reason: str


class NestedAnswer(_Model):
    target: str
    verdicts: list[NestedVerdict] = Field(default_factory=list)


_YES = {"yes": True, "no": False, "true": True, "false": False}


class CheckNestedTask(Task[NestedItem, NestedAnswer]):
    name: ClassVar[str] = "check_nested"
    template: ClassVar[str] = "check_nested.md"
    input_model: ClassVar[type[BaseModel]] = NestedItem
    output_model: ClassVar[type[BaseModel]] = NestedAnswer
    temperature: ClassVar[float | None] = 0.0

    def __init__(self) -> None:
        self.profiles = ProfileCache()

    def variables(self, item: NestedItem) -> dict[str, Any]:
        t = item.target
        return {
            "target_name": t.name,
            "target_description": t.description,
            "target_parameters": signature_text(t),
            "sources": [
                {"name": s.tool.name, "description": s.tool.description, "outputs": outputs_text(s.tool), "kind": s.kind, "evidence": s.evidence}
                for s in item.sources
            ],
        }

    def parse(self, text: str, item: NestedItem) -> NestedAnswer:
        data = extract_json(text)
        expected = [s.tool.name for s in item.sources]
        if not isinstance(data, dict):
            raise ParseError('answer with a JSON object {"<source>": {"answer": "yes" or "no", "reason": "..."}}')
        missing = [n for n in expected if n not in data]
        if missing:
            raise ParseError(f"give an answer for every source; missing: {', '.join(missing)}")
        verdicts = []
        for name in expected:
            entry = data[name]
            if not isinstance(entry, dict):
                raise ParseError(f"'{name}': expected {{\"answer\": \"yes\" or \"no\", \"reason\": \"...\"}}")
            answer = str(entry.get("answer", "")).strip().lower()
            if answer not in _YES:
                raise ParseError(f"'{name}': answer must be yes or no, got {entry.get('answer')!r}")
            reason = str(entry.get("reason", "")).strip()
            if not reason:
                raise ParseError(f"'{name}': give a reason")
            verdicts.append(NestedVerdict(source=name, nested=_YES[answer], reason=reason))
        return NestedAnswer(target=item.target.name, verdicts=verdicts)

    def answer_text(self, output: NestedAnswer) -> str:
        return json.dumps({v.source: {"answer": "yes" if v.nested else "no", "reason": v.reason} for v in output.verdicts}, ensure_ascii=False)

    def offline(self, item: NestedItem) -> NestedAnswer:
        dst = self.profiles(item.target)
        verdicts = []
        for source in item.sources:
            src = self.profiles(source.tool)
            verdict = judge_pair(src, dst)
            reason = nested_reason(src, dst, verdict) if verdict is not None else None
            verdicts.append(
                NestedVerdict(source=source.tool.name, nested=reason is not None,
                              reason=reason or f"the values {item.target.name} needs are ones a user can state; they would name it")
            )
        return NestedAnswer(target=item.target.name, verdicts=verdicts)
