"""Back-translation (paper section 3.3): a turn's function signatures -> the user's query.

The model plays the user: the query is motivated by the last round's outputs, never names a
function, states a value for every required parameter the user must give (the plan's
``query`` values, decided before the query so that query and calls agree), refers to values
from earlier outputs only indirectly and never repeats an earlier query. Split turns change
what is asked: a ``miss_params`` query leaves one value out and the next turn supplies it; a
``miss_func`` query asks for something no offered function does, and the next turn says to go
ahead once the function is available.

The offline implementation writes the query from the functions' descriptions with a few
phrasings chosen by a seeded generator; :func:`check_query` enforces the rules on any query,
offline or from a model (a violation is a parse error the model is re-asked with).
"""

from __future__ import annotations

import json
import random
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.llm.task import ParseError, Task, output_schema
from magnet_lib.models import stable_hash
from magnet_lib.vocabulary import looks_like_code, words

QueryMode = Literal["request", "split_miss_func", "split_miss_params", "resume_miss_func", "resume_miss_params"]


class ParallelValues(BaseModel):
    """Parallel calls: the function is asked for once per value of ``param``. The user states
    every value (``query``) or refers to them together as the first ones of an earlier result."""

    param: str
    values: list[Any]
    source: Literal["query", "previous", "earlier"]


class FunctionRequest(BaseModel):
    """What the query must ask of one function: the values the user states, and the
    parameters whose values come from earlier outputs (``previous``/``earlier`` turn) or
    from another call of the same turn (``same_turn``, never mentioned); ``parallel`` when
    the function is called several times in the turn, once per value of one parameter."""

    function: str
    description: str
    values: dict[str, Any] = Field(default_factory=dict)
    from_outputs: dict[str, Literal["previous", "earlier", "same_turn"]] = Field(default_factory=dict)
    parallel: ParallelValues | None = Field(None, exclude_if=lambda v: v is None)


class MissingValue(BaseModel):
    function: str
    param: str
    value: Any
    description: str = ""


class BackTranslateInput(BaseModel):
    """One back-translation request."""

    category: str
    mode: QueryMode = "request"
    requests: list[FunctionRequest]
    missing: MissingValue | None = Field(None, description="miss_params: the value left out (and given in the follow-up).")
    withheld: str | None = Field(None, description="miss_func: description of the function that is not offered.")
    previous_queries: list[str] = Field(default_factory=list)
    last_outputs: list[dict[str, Any]] = Field(default_factory=list, description="The previous round's calls and outputs.")
    avoid_names: list[str] = Field(default_factory=list, description="Function names the query must never contain.")
    attempt: int = 0
    feedback: str | None = None


class BackTranslation(BaseModel):
    query: str = Field(min_length=1)


# --------------------------------------------------------------------------- rules


def names_in(text: str, names: list[str]) -> list[str]:
    lowered = text.lower()
    return [n for n in names if looks_like_code(n) and re.search(rf"(?<![\w]){re.escape(n.lower())}(?![\w])", lowered)]


def value_mentions(value: Any) -> list[str]:
    """Ways a query may write ``value`` (a float 12.0 may appear as '12')."""
    if isinstance(value, bool):
        return []
    if isinstance(value, float):
        forms = [repr(value), f"{value:g}"]
        if value.is_integer():
            forms.append(str(int(value)))
        return forms
    if isinstance(value, (int, str)):
        return [str(value)]
    if isinstance(value, list):
        return [m for v in value for m in value_mentions(v)[:1]]
    return []


def mentions(text: str, value: Any) -> bool:
    forms = value_mentions(value)
    if not forms:
        return True
    lowered = text.lower()
    if isinstance(value, list):
        return all(f.lower() in lowered for f in forms)
    return any(f.lower() in lowered for f in forms)


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


def check_query(query: str, item: BackTranslateInput) -> None:
    """Raise :class:`ParseError` when a query breaks a rule of back-translation."""
    named = names_in(query, item.avoid_names)
    if named:
        raise ParseError(f"the query names function(s) {', '.join(named)}; describe what you want in plain words instead")
    if normalize(query) in {normalize(q) for q in item.previous_queries}:
        raise ParseError("the query repeats an earlier message of the user; write a new one")
    if item.mode in ("request", "split_miss_func", "split_miss_params"):
        for request in item.requests:
            for param, value in request.values.items():
                if (
                    item.missing
                    and item.mode == "split_miss_params"
                    and request.function == item.missing.function
                    and param == item.missing.param
                ):
                    continue
                if not mentions(query, value):
                    raise ParseError(f"the query must state the {words(param)}: {json.dumps(value, ensure_ascii=False)}")
            each = request.parallel
            if each is not None and each.source == "query":
                for value in each.values:
                    if not mentions(query, value):
                        raise ParseError(f"the query must ask for each {words(each.param)}, also {json.dumps(value, ensure_ascii=False)}")
    if item.mode == "split_miss_params" and item.missing:
        withheld = item.missing
        others = [v for r in item.requests for p, v in r.values.items() if (r.function, p) != (withheld.function, withheld.param)]
        short = all(len(f) < 3 for f in value_mentions(withheld.value))
        if withheld.value not in others and not short and value_mentions(withheld.value) and mentions(query, withheld.value):
            raise ParseError(f"leave out the {words(withheld.param)}: the user does not give it in this message")
    if item.mode == "resume_miss_params" and item.missing and not mentions(query, item.missing.value):
        raise ParseError(f"the message must give the {words(item.missing.param)}: {json.dumps(item.missing.value, ensure_ascii=False)}")


# --------------------------------------------------------------------------- offline phrasing

_OPENERS = [
    "I need some help with this: {task}",
    "Could you take care of the following for me? {task}",
    "Here's what I'm after: {task}",
    "Please handle this: {task}",
    "Next request: {task}",
    "One thing I'd like done: {task}",
]
_THEN = ["Then", "After that", "Once that's done", "Next"]
_EARLIER = {
    "previous": ["the {w} from the result you just got", "the {w} we just got back", "that {w} from the last result"],
    "earlier": ["the {w} from earlier in our conversation", "the {w} you found before", "the {w} from the earlier result"],
}
_RESUME_FUNC = [
    "That should be possible now. Please go ahead with what I asked.",
    "You can do that now, so please go ahead with my earlier request.",
    "The missing capability is there now; please continue with my request.",
]
_RESUME_PARAMS = [
    "Sorry, the {w} is {v}. Please go ahead.",
    "The {w} is {v}; please continue.",
    "Right, I forgot: the {w} is {v}.",
]


def sentence(description: str) -> str:
    """The first sentence of a description, lower-cased and without its final stop, to
    embed in a query."""
    protected = re.sub(r"\b(e\.g|i\.e|etc|vs)\.", lambda m: m.group(0).replace(".", "\0"), description.strip())
    first = re.split(r"(?<=[.!?])\s", protected, maxsplit=1)[0].replace("\0", ".").rstrip(".!? ")
    if len(first) > 1 and not first[1].isupper():
        first = first[0].lower() + first[1:]
    return first


def render_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(render_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


_COUNT = {2: "two", 3: "three"}
_EACH_FROM = {"previous": "the result you just got", "earlier": "the earlier result"}


def _clause(request: FunctionRequest, skip: str | None, rng: random.Random) -> str:
    parts = [f"{words(p)} {render_value(v)}" for p, v in request.values.items() if p != skip]
    refs = [choose_text(_EARLIER[k], rng).format(w=words(p)) for p, k in request.from_outputs.items() if k in _EARLIER]
    text = sentence(request.description)
    details = []
    if parts:
        details.append("with " + ", ".join(parts))
    if refs:
        details.append("using " + " and ".join(refs))
    each = request.parallel
    if each is not None:
        w, n = words(each.param), len(each.values)
        if each.source == "query":
            details.append(f"once for each {w}: {render_value(each.values)}")
        else:
            details.append(f"once for each of the first {_COUNT.get(n, n)} {w} values in {_EACH_FROM[each.source]}")
    return text + (" (" + "; ".join(details) + ")" if details else "")


def choose_text(options: list[str], rng: random.Random) -> str:
    return options[rng.randrange(len(options))]


def _sanitize(text: str, names: list[str]) -> str:
    for name in sorted(names, key=len, reverse=True):
        if looks_like_code(name):
            text = re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", words(name), text, flags=re.IGNORECASE)
    return text


def offline_query(item: BackTranslateInput) -> BackTranslation:
    """A templated query that follows every rule of :func:`check_query`."""
    rng = random.Random(f"back:{stable_hash(item.model_dump(mode='json'))}")
    seen = {normalize(q) for q in item.previous_queries}
    for variant in range(len(_OPENERS) + 3):
        if item.mode == "resume_miss_func":
            query = choose_text(_RESUME_FUNC, rng)
        elif item.mode == "resume_miss_params":
            assert item.missing is not None
            query = choose_text(_RESUME_PARAMS, rng).format(w=words(item.missing.param), v=render_value(item.missing.value))
        else:
            skip = item.missing.param if item.mode == "split_miss_params" and item.missing else None
            clauses = []
            for i, request in enumerate(item.requests):
                clause = _clause(request, skip if item.missing and request.function == item.missing.function else None, rng)
                clauses.append(clause if i == 0 else f"{choose_text(_THEN, rng)}, {clause}")
            task = ". ".join(c[0].upper() + c[1:] for c in clauses) + "."
            query = choose_text(_OPENERS, rng).format(task=task)
        if variant >= len(_OPENERS):
            query = f"{query} (this is a new request)" if variant == len(_OPENERS) else f"{query} [{variant}]"
        query = _sanitize(query, item.avoid_names)
        if normalize(query) not in seen:
            return BackTranslation(query=query)
    raise ValueError("could not write a query that differs from the earlier ones")


def parse_query(text: str, item: BackTranslateInput) -> BackTranslation:
    """Read ``{"query": ...}`` (or a bare message) and check the rules."""
    stripped = text.strip()
    query: str | None = None
    if stripped.startswith("{") or "```" in stripped:
        try:
            data = json.loads(re.sub(r"^```(?:json)?|```$", "", stripped).strip())
            if isinstance(data, dict) and isinstance(data.get("query"), str):
                query = data["query"]
        except json.JSONDecodeError:
            query = None
        if query is None:
            raise ParseError('answer with JSON only: {"query": "<the user\'s message>"}')
    else:
        query = re.sub(r"^(query|user)\s*:\s*", "", stripped, flags=re.IGNORECASE)
    query = query.strip()
    if not query:
        raise ParseError("the query is empty")
    check_query(query, item)
    return BackTranslation(query=query)


# --------------------------------------------------------------------------- the LLM task


class BackTranslateTask(Task[BackTranslateInput, BackTranslation]):
    name = "back_translate"
    template = "back_translate.md"
    input_model = BackTranslateInput
    output_model = BackTranslation

    def parse(self, text: str, item: BackTranslateInput) -> BackTranslation:
        return parse_query(text, item)

    def offline(self, item: BackTranslateInput) -> BackTranslation:
        return offline_query(item)

    def response_schema(self, item: BackTranslateInput) -> dict:
        return output_schema(BackTranslation)

    def answer_text(self, output: BackTranslation) -> str:
        return output.model_dump_json()


BACK_TRANSLATE = BackTranslateTask()
