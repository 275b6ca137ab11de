"""An LLM-backed step of the method: render a prompt, parse the answer, or run offline.

A task is three separable things (the distilabel habit):

- ``render(item)``: the chat messages, from a Jinja2 template file in ``magnet_lib/prompts/``.
  A template holds sections introduced by a line ``### system`` or ``### user`` (also
  ``### assistant`` for few-shot turns); the item's fields are the template's variables.
- ``parse(text, item)``: validate the model's answer into the typed output, raising
  :class:`ParseError` with a message the model can act on when it cannot.
- ``offline(item)``: the deterministic implementation with the same output type, used when
  no model is configured.

and one more, the inverse of ``parse``: ``answer_text(output)`` writes an output the way a
model should answer, so that ``parse(answer_text(offline(item)), item) == offline(item)``.
The local test server (:mod:`magnet_lib.testing.server`) answers with it, which is how the
whole pipeline runs in LLM mode against a fake model; the default writes the output as JSON,
right for every task whose parser reads a JSON object with the output's fields.

The template's content hash is the task's version: editing one template invalidates only
that task's cache entries. Sampling defaults of a task (``temperature``, ``max_tokens``) and
extra request parameters (``request_params``: tools, response_format, ...) are part of the
cache key.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import jinja2
from pydantic import BaseModel, ValidationError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

I = TypeVar("I", bound=BaseModel)
O = TypeVar("O", bound=BaseModel)

_SECTION = re.compile(r"^###\s*(system|user|assistant)\s*$", re.MULTILINE)
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
_ENV.filters["tojson"] = lambda v, indent=None: json.dumps(v, ensure_ascii=False, indent=indent, default=str)


class ParseError(ValueError):
    """The answer cannot be used; the message is shown to the model when it is re-asked."""


class Task(Generic[I, O]):
    """Base class of every LLM-backed step. Subclasses set the class variables and methods."""

    name: ClassVar[str]
    template: ClassVar[str]  # file name under ``prompts_dir``
    input_model: ClassVar[type[BaseModel]]
    output_model: ClassVar[type[BaseModel]]
    #: where ``template`` lives (tests point a subclass at a temporary folder)
    prompts_dir: ClassVar[Path] = PROMPTS_DIR
    #: sampling defaults of this task; None = the settings' value (a judge may want 0.0)
    temperature: ClassVar[float | None] = None
    max_tokens: ClassVar[int | None] = None

    @cached_property
    def template_text(self) -> str:
        return (Path(self.prompts_dir) / self.template).read_text(encoding="utf-8")

    @cached_property
    def _compiled(self) -> jinja2.Template:
        return _ENV.from_string(self.template_text)

    @cached_property
    def version(self) -> str:
        return hashlib.sha256(self.template_text.encode("utf-8")).hexdigest()[:12]

    def variables(self, item: I) -> dict[str, Any]:
        """Template variables of an item; override to add derived values."""
        return {name: getattr(item, name) for name in type(item).model_fields}

    def render(self, item: I) -> list[dict[str, str]]:
        text = self._compiled.render(**self.variables(item))
        parts = _SECTION.split(text)
        messages = [{"role": role, "content": content.strip()} for role, content in zip(parts[1::2], parts[2::2]) if content.strip()]
        if not messages:
            raise ValueError(f"template {self.template} has no '### system' / '### user' sections")
        return messages

    def request_params(self, item: I) -> dict[str, Any]:
        """Extra completion parameters for this item (e.g. ``tools``, ``response_format``).

        They are sent to the model and are part of the cache key."""
        return {}

    def response_schema(self, item: I) -> dict[str, Any] | None:
        """The JSON Schema of the answer ``parse`` reads for this item, sent as
        ``response_format`` where the server enforces schemas (:mod:`magnet_lib.llm.structured`);
        None = a free-text answer. Default: ``output_model``'s schema when the answer is the
        output as JSON (``answer_text`` not overridden), else None; a task whose answer is
        JSON of another shape overrides this."""
        if type(self).answer_text is Task.answer_text:
            return output_schema(self.output_model)
        return None

    def parse(self, text: str, item: I) -> O:  # pragma: no cover - overridden
        raise NotImplementedError

    def offline(self, item: I) -> O:  # pragma: no cover - overridden
        raise NotImplementedError

    def offline_sample(self, item: I, sample_index: int) -> O:
        """The offline answer for the ``sample_index``-th sample of the same item (student
        sampling asks for several); deterministic tasks return ``offline(item)``."""
        return self.offline(item)

    def answer_text(self, output: O) -> str:
        """An answer a model could give that ``parse`` turns into ``output``.

        The default is the output as JSON; a task with another answer format
        (``Thought:``/``Answer:``, ``yes|no`` plus a reason) overrides it."""
        return output.model_dump_json()

    def validate_output(self, data: Any) -> O:
        """``output_model`` from parsed JSON, with pydantic's complaints as a :class:`ParseError`
        written for the model (field path and what is wrong)."""
        try:
            return self.output_model.model_validate(data)  # type: ignore[return-value]
        except ValidationError as exc:
            raise ParseError(validation_message(exc)) from None


@lru_cache(maxsize=128)
def _schema_text(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema())


def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A pydantic model's JSON Schema (a fresh copy; computed once per model)."""
    return json.loads(_schema_text(model))


def validation_message(exc: ValidationError) -> str:
    """A pydantic validation error in a few lines a model can act on."""
    lines = []
    for error in exc.errors()[:8]:
        where = ".".join(str(p) for p in error["loc"]) or "answer"
        lines.append(f"- {where}: {error['msg']}")
    return "the answer does not match the expected fields:\n" + "\n".join(lines)


def extract_json(text: str) -> Any:
    """The first JSON value in a model answer, tolerating code fences and prose around it."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    candidates = [fenced.group(1)] if fenced else []
    candidates.append(text)
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for start, char in enumerate(candidate):
            if char in "[{":
                try:
                    value, _ = decoder.raw_decode(candidate[start:])
                    return value
                except json.JSONDecodeError:
                    continue
    raise ParseError("no JSON value found in the answer; answer with JSON only")
