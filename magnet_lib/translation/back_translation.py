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
    every value (``query``) or refers to them together as the first ones of an earlier result,
    or of a list another call of the turn returns (``same_turn``: the values are not known yet)."""

    param: str
    values: list[Any]
    source: Literal["query", "previous", "earlier", "same_turn"]


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
    nested: bool = Field(
        False,
        exclude_if=lambda v: not v,
        description="The call needs an output of another call of this turn (Insert): the user states the goal, never this step.",
    )
    ordinals: dict[str, str] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Per output-sourced parameter with several candidates in its output: which one ('first', 'second', 'last').",
    )
    across: dict[str, str] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Per output-sourced parameter whose field had other values in other earlier turns: which of them in time order "
        "('first', 'second', 'latest'), so that 'the schedule id' says which schedule.",
    )


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
    "{task}",
    "{task}",
    "{task}",
    "Hi! {task}",
    "Hey, {task_lc}",
    "Quick one: {task_lc}",
    "Can you help me? {task}",
    "I'd like your help. {task}",
    "Please, {task_lc}",
    "So, {task_lc}",
    "OK. {task}",
    "Next: {task_lc}",
    "One more thing. {task}",
    "Alright, {task_lc}",
]
#: openers that continue a conversation: never the first message ('Next: ...' opens nothing)
_CONTINUING = ("Next:", "One more thing.")
_FIRST_OPENERS = [o for o in _OPENERS if not o.startswith(_CONTINUING)]
_THEN = ["Then", "After that", "Once that's done", "Next", "And then", "Also", "When you have that"]
_EARLIER = {
    "previous": ["the {w} you just found", "the {w} we just got back", "that {w}", "the {w} from that result"],
    "earlier": ["the {w} from earlier", "the {w} you found before", "the {w} we saw earlier"],
}
_ORDINAL_REF = {
    "previous": ["the {o} {w} in that result", "the {o} {w} you just listed", "the {o} {w} from that list"],
    "earlier": ["the {o} {w} from the earlier result", "the {o} {w} in the list from before"],
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


#: how a request for a function acting on an object reads, by the function's verb ({o}: the object)
_VERB_PHRASES: dict[str, list[str]] = {
    "get": ["what's the {o}", "can you get me the {o}", "I'd like to know the {o}", "show me the {o}", "look up the {o}"],
    "list": ["list my {o}", "show me the {o}", "what {o} are there", "give me an overview of the {o}"],
    "search": ["search for {o}", "find {o}", "look for {o}", "I'm looking for {o}"],
    "find": ["find the {o}", "look for the {o}", "tell me which {o} there are"],
    "check": ["check the {o}", "can you check the {o}", "I want to know the {o}"],
    "convert": ["convert the {o}", "convert that {o}"],  # the target (unit, currency, zone) follows as a value
    "calculate": ["work out the {o}", "calculate the {o}", "figure out the {o}"],
    "estimate": ["estimate the {o}", "roughly what's the {o}"],
    "cancel": ["cancel the {o}", "please cancel the {o}", "I no longer need the {o}, cancel it"],
    "delete": ["delete the {o}", "remove the {o}", "get rid of the {o}"],
    "remove": ["remove the {o}", "take out the {o}", "drop the {o}"],
    "add": ["add {o}", "please add {o}", "put in {o}"],
    "create": ["create {o}", "set up {o}", "make {o}"],
    "book": ["book {o}", "reserve {o}", "make a booking: {o}"],
    "send": ["send {o}", "please send {o}"],
    "write": ["write to the {o}", "please write to the {o}"],
    "share": ["share the {o}", "please share the {o}"],
    "update": ["update the {o}", "change the {o}"],
    "set": ["set the {o}", "change the {o}"],
}
_VERB_ALIASES = {
    "fetch": "get", "show": "get", "view": "get", "read": "get", "lookup": "get", "is": "check", "verify": "check",
    "validate": "check", "compute": "calculate", "make": "create", "schedule": "create", "place": "create", "open": "create",
    "register": "create", "post": "send", "edit": "update", "modify": "update", "change": "update",
    "erase": "delete", "clear": "delete", "unsubscribe": "cancel", "revoke": "cancel", "stop": "cancel", "reserve": "book",
}  # fmt: skip
_GOAL_PHRASES = [
    "and give me the {o} for it",
    "and I'd also like the {o} that goes with it",
    "and with that, the {o}",
    "and then the {o} for it",
]
#: the same goal for each of the first n elements of a list the turn's call returns
_EACH_GOAL_PHRASES = [
    "and give me the {o} for the first {n} of them",
    "and the {o} of the first {n} results too",
    "and then the {o} for each of the first {n}",
    "and I'd also like the {o} of the top {n}",
]
#: verbs of functions that only look something up: a nested one of them is a goal ('the route details for it')
_LOOK_VERBS = frozenset({"get", "list", "search", "find", "check", "calculate", "estimate", "convert"})
_CONVERSION_GOALS = ["and how much is that in {v}?", "and give me that in {v}", "and what's that in {v}"]


def _verb_and_object(function: str) -> tuple[str | None, str]:
    toks = [t for t in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", function) if t]
    toks = [t.lower() for t in toks]
    verb = toks[0] if toks else None
    if verb in _VERB_ALIASES:
        verb = _VERB_ALIASES[verb]
    obj = " ".join(toks[1:]) if verb in _VERB_PHRASES and len(toks) > 1 else " ".join(toks)
    return (verb if verb in _VERB_PHRASES else None), obj


#: a parameter's side prefix as a user says it: 'the to currency' reads 'the target currency'
_SIDE_WORDS = {"to": "target", "from": "source"}


def said(param: str) -> str:
    """A parameter's name in a user's words: 'to_currency' -> 'target currency', 'from_unit' ->
    'source unit' (never 'the to currency'); other names as :func:`words` gives them."""
    text = words(param)
    first, _, rest = text.partition(" ")
    return f"{_SIDE_WORDS[first]} {rest}" if rest and first in _SIDE_WORDS else text


#: words that tie a verb to its object ('comment on', 'unsubscribe from'): the article goes after them
PREPOSITIONS = frozenset({"on", "from", "to", "in", "into", "for", "with", "by", "at", "of", "onto", "about", "between", "as"})


def _prepositional(function: str) -> tuple[str, str, str] | None:
    """(verb, preposition, object) of a name like 'comment_on_post' or 'unsubscribe_from_weather_alerts'."""
    toks = [t.lower() for t in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", function) if t]
    if len(toks) >= 3 and toks[1] in PREPOSITIONS:
        return toks[0], toks[1], " ".join(toks[2:])
    return None


def request_phrase(request: FunctionRequest, rng: random.Random) -> str:
    """The request in a user's words: what they want done to what, from the function's name
    (its verb and object), not its description pasted; a verb with its preposition keeps it
    before the object ('comment on the post', never 'comment the on post')."""
    tied = _prepositional(request.function)
    if tied is not None:
        v, prep, o = tied
        return choose_text(["please {v} {p} the {o}", "could you {v} {p} the {o}", "I'd like to {v} {p} the {o}"], rng).format(
            v=v, p=prep, o=o
        )
    verb, obj = _verb_and_object(request.function)
    if verb is None:  # a verb of its own ('request_prescription_refill', 'save_place'): use it
        toks = obj.split()
        if len(toks) > 1:
            return choose_text(["please {v} the {o}", "could you {v} the {o}", "I'd like to {v} the {o}"], rng).format(
                v=toks[0], o=" ".join(toks[1:])
            )
        return choose_text(["please {o}", "I'd like to {o}"], rng).format(o=obj)
    return choose_text(_VERB_PHRASES[verb], rng).format(o=obj)


_ACROSS_REF = ["the {o} {w} you got", "the {o} {w} so far", "the {o} of the {w} values you found"]


def _reference(param: str, kind: str, ordinal: str | None, rng: random.Random, across: str | None = None) -> str:
    if ordinal:
        return choose_text(_ORDINAL_REF[kind], rng).format(o=ordinal, w=said(param))
    if across:  # several earlier turns gave one: which of them ('the second schedule id you got')
        return choose_text(_ACROSS_REF, rng).format(o=across, w=said(param))
    return choose_text(_EARLIER[kind], rng).format(w=said(param))


def _values_text(parts: list[str], rng: random.Random) -> str:
    joined = ", ".join(parts)
    return choose_text(["for {v}", "with {v}", "({v})", "- {v}"], rng).format(v=joined)


def _fresh(options: list[str], used: set[str] | None, rng: random.Random) -> str:
    """One of ``options`` not yet ``used`` in this message (two goals never share a phrase:
    'and I'd also like the X that goes with it and I'd also like the Y that goes with it')."""
    left = [o for o in options if used is None or o not in used] or options
    chosen = choose_text(left, rng)
    if used is not None:
        used.add(chosen)
    return chosen


def _goal(request: FunctionRequest, skip: str | None, rng: random.Random, used: set[str] | None = None) -> str:
    """A nested call (Insert) as the goal the user states, never the step itself: 'and how much
    is that in fahrenheit?', 'and give me the route details for it'."""
    stated = [v for p, v in request.values.items() if p != skip]
    verb, obj = _verb_and_object(request.function)
    if verb == "convert" and stated:
        return choose_text(_CONVERSION_GOALS, rng).format(v=" and ".join(str(v) for v in stated))
    each = request.parallel
    count = _COUNT.get(len(each.values), str(len(each.values))) if each is not None else ""
    if verb not in _LOOK_VERBS:  # an action (delete, cancel, unfollow) is asked for with its verb, never as 'the X for it'
        text = choose_text(["and then", "and after that", "and"], rng) + " " + request_phrase(request, rng)
        if each is not None:
            text += choose_text([" for the first {n} of them", " for each of the first {n}"], rng).format(n=count)
    elif each is not None:  # one look-up per element of the list just returned
        text = _fresh(_EACH_GOAL_PHRASES, used, rng).format(o=obj, n=count)
    else:
        text = _fresh(_GOAL_PHRASES, used, rng).format(o=obj)
    if each is None and "first" in request.ordinals.values():
        text += choose_text([" (for the first one)", " for the first of them", " (the first result)"], rng)
    if stated:
        text += " " + _values_text([render_value(v) for v in stated], rng)
    return text


def _unit_param(param: str, side: tuple[str, ...]) -> bool:
    toks = re.split(r"[_\W]+", param.lower())
    return len(toks) >= 2 and toks[0] in side and toks[-1] in ("unit", "units", "currency")


def _conversion(request: FunctionRequest, skip: str | None, rng: random.Random) -> str | None:
    """'What's the first temperature from that list in kelvin?' for a converter whose value
    comes from an output (its source unit is that output's) or is stated with its unit."""
    target = next((v for p, v in request.values.items() if _unit_param(p, ("to", "target")) and p != skip), None)
    if target is None:
        return None
    source_unit = next((v for p, v in request.values.items() if _unit_param(p, ("from", "source", "base"))), None)
    value_ref = next(
        (
            _reference(p, k, request.ordinals.get(p), rng, request.across.get(p))
            for p, k in request.from_outputs.items()
            if k in _EARLIER and not _unit_param(p, ("from", "source", "base"))
        ),
        None,
    )
    if value_ref is not None and source_unit:
        value_ref += f" (in {source_unit})"
    if value_ref is None:
        number = next((v for p, v in request.values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)), None)
        if number is None:
            return None
        value_ref = f"{render_value(number)} {source_unit}" if source_unit else render_value(number)
    other = [
        f"{said(p)} {render_value(v)}"
        for p, v in request.values.items()
        if p != skip and not _unit_param(p, ("to", "target", "from", "source", "base")) and not isinstance(v, (int, float))
    ]
    text = choose_text(["what is {r} in {t}", "convert {r} to {t}", "how much is {r} in {t}"], rng).format(r=value_ref, t=target)
    return text + (" " + _values_text(other, rng) if other else "")


def _zone_param(param: str) -> bool:
    toks = re.split(r"[_\W]+", param.lower())
    return "timezone" in toks or "tz" in toks or ("time" in toks and "zone" in toks)


def _in_zone(zone: Any) -> str:
    """'in Asia/Tokyo time', 'in UTC': where a time is read, never 'in another unit'."""
    return f"in {zone}" if str(zone).upper() in ("UTC", "GMT") else f"in {zone} time"


def _time_zone_conversion(request: FunctionRequest, skip: str | None, rng: random.Random) -> str | None:
    """'What time is "2025-07-10T11:30" in America/New_York time?' for a converter of time zones
    (a time zone is where a clock is read, not a unit)."""
    zones = [p for p in request.values if _zone_param(p) and p != skip]
    source = next((p for p in zones if p.lower().split("_")[0] in ("from", "source", "base")), None)
    target = next((p for p in zones if p != source), None)
    if target is None:  # the zone comes from an earlier result: 'in the time zone you just found'
        zone_ref = next((p for p, k in request.from_outputs.items() if _zone_param(p) and k in _EARLIER), None)
        moment_ref = next((p for p, k in request.from_outputs.items() if not _zone_param(p) and k in _EARLIER), None)
        moment_text = next((render_value(v) for p, v in request.values.items() if not _zone_param(p) and isinstance(v, str)), None)
        if zone_ref is None or (moment_ref is None and moment_text is None):
            return None
        kind = request.from_outputs
        zone_text = _reference(zone_ref, kind[zone_ref], request.ordinals.get(zone_ref), rng, request.across.get(zone_ref))
        if moment_text is None:
            moment_text = _reference(moment_ref, kind[moment_ref], request.ordinals.get(moment_ref), rng, request.across.get(moment_ref))
        return choose_text(["what time is {m} in {z}", "convert {m} to {z}"], rng).format(m=moment_text, z=zone_text)
    moment = next(
        (render_value(v) for p, v in request.values.items() if p not in zones and p != skip and isinstance(v, str)),
        None,
    )
    if moment is None:
        moment = next(
            (
                _reference(p, k, request.ordinals.get(p), rng, request.across.get(p))
                for p, k in request.from_outputs.items()
                if k in _EARLIER
            ),
            None,
        )
    if moment is None:
        return None
    if source is not None:
        moment += f" ({_in_zone(request.values[source])[3:]})"
    text = choose_text(["what time is {m} {z}", "convert {m} to {zt}", "what is {m} {z}"], rng)
    return text.format(m=moment, z=_in_zone(request.values[target]), zt=_in_zone(request.values[target])[3:])


def _clause(request: FunctionRequest, skip: str | None, rng: random.Random, used: set[str] | None = None) -> str:
    zoned_call = any(_zone_param(p) for p in [*request.values, *request.from_outputs])
    if request.parallel is None and zoned_call and _verb_and_object(request.function)[0] == "convert":
        zoned = _time_zone_conversion(request, skip, rng)
        if zoned is not None:
            return zoned if not request.nested else choose_text(["and", "and then"], rng) + " " + zoned
    if request.nested and (request.parallel is None or request.parallel.source == "same_turn"):
        return _goal(request, skip, rng, used)
    if request.parallel is None and _verb_and_object(request.function)[0] == "convert":
        converted = _conversion(request, skip, rng)
        if converted is not None:
            return converted
    obj = _verb_and_object(request.function)[1]
    # a value whose name ends the object ('posts by hashtag') follows it directly: 'posts by hashtag "#travel"'
    inline = [p for p, v in request.values.items() if p != skip and obj.endswith(words(p)) and request.parallel is None]
    inline = inline[:1]
    parts = [f"{said(p)} {render_value(v)}" for p, v in request.values.items() if p != skip and p not in inline]
    refs = [
        _reference(p, k, request.ordinals.get(p), rng, request.across.get(p))
        for p, k in request.from_outputs.items()
        if k in _EARLIER and not _unit_param(p, ("from", "source", "base"))  # a unit goes with its value
    ]
    text = request_phrase(request, rng)
    if inline and text.endswith(words(inline[0])):
        text += " " + render_value(request.values[inline[0]])
    elif inline:  # the phrase does not end with the object after all: state it as usual
        parts.insert(0, f"{words(inline[0])} {render_value(request.values[inline[0]])}")
    details = []
    if parts:
        details.append(_values_text(parts, rng))
    if refs:
        details.append(choose_text(["using", "with", "for"], rng) + " " + " and ".join(refs))
    each = request.parallel
    if each is not None:
        w, n = said(each.param), len(each.values)
        if each.source == "query":
            details.append(f"once for each {w}: {render_value(each.values)}")
        else:
            details.append(f"once for each of the first {_COUNT.get(n, n)} {w} values in {_EACH_FROM[each.source]}")
    return text + (" " + " ".join(details) if details else "")


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
            query = choose_text(_RESUME_PARAMS, rng).format(w=said(item.missing.param), v=render_value(item.missing.value))
        else:
            skip = item.missing.param if item.mode == "split_miss_params" and item.missing else None
            clauses = []
            used: set[str] = set()
            for i, request in enumerate(item.requests):
                clause = _clause(request, skip if item.missing and request.function == item.missing.function else None, rng, used)
                if i and request.nested:
                    clauses[-1] = clauses[-1] + " " + clause  # the goal belongs to the request before it
                else:
                    clauses.append(clause if i == 0 else f"{choose_text(_THEN, rng)}, {clause}")
            task = ". ".join(c[0].upper() + c[1:] for c in clauses)
            task = task if task.endswith("?") else task + ("?" if re.match(r"(what|which|can|how)\b", task.lower()) else ".")
            openers = _OPENERS if item.previous_queries else _FIRST_OPENERS
            query = choose_text(openers, rng).format(task=task, task_lc=task[0].lower() + task[1:])
        if variant >= len(_OPENERS):
            query = f"{query} (this is a new request)" if variant == len(_OPENERS) else f"{query} Once more, please ({variant})."
        query = _sanitize(query, item.avoid_names)
        query = re.sub(r"\b([Tt])he my\b", lambda m: m.group(1).replace("t", "m").replace("T", "M") + "y", query)  # 'the my appointments'
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
