"""The rules of the data lint, each measured from the data alone.

Every rule takes a :class:`~magnet_lib.lint.data.Dataset` and returns a :class:`Figure` per
measure: a count, what it counts over, and a few examples a reviewer can open. Values are
traced through the conversation itself: an argument "comes from an output" when it is not
stated by the user and equals a leaf of an earlier tool output; the field it came from is
that leaf's name.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from magnet_lib.lint.data import Dataset, Item, Turn, call_arguments, call_name
from magnet_lib.vocabulary import ROLE_PREFIXES, VERBS, name_tokens, quantity, shares_word, singular, words

#: ordinals and deictic phrases that single out one of several candidates
_DISAMBIGUATORS = re.compile(
    r"\b(first|second|third|fourth|fifth|last|latest|newest|oldest|cheapest|earliest|top|just (added|created|booked|made|got|placed|sent))\b",
    re.I,
)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_ID = re.compile(r"^[A-Za-z]{1,6}[-_]?\d+[\w-]*$")


@dataclass
class Figure:
    name: str
    count: int
    total: int
    description: str
    examples: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "total": self.total, "share": round(self.share, 4), "description": self.description}


class _Counter:
    def __init__(self, name: str, description: str) -> None:
        self.name, self.description = name, description
        self.count = self.total = 0
        self.examples: list[str] = []

    def add(self, hit: bool, example: str = "") -> None:
        self.total += 1
        if hit:
            self.count += 1
            if example and len(self.examples) < 5:
                self.examples.append(example[:300])

    def figure(self) -> Figure:
        return Figure(self.name, self.count, self.total, self.description, self.examples)


# ----------------------------------------------------------------------------- value tracing
def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", round(float(value), 6))
    return ("s", str(value))


def _leaves(
    value: Any, key: str | None = None, parent: dict | None = None, index: int = 0
) -> Iterator[tuple[str | None, Any, dict | None, int]]:
    """(field, scalar, the object holding it, position in its list) for every scalar."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, str(k), value, index)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, key, parent, i)
    elif value is not None:
        yield key, value, parent, index


def _trivial(value: Any) -> bool:
    """Values that coincide by chance too often to trace (booleans, 0, 1, one-letter strings)."""
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, (int, float)):
        return float(value) in (0.0, 1.0)
    return len(str(value)) < 3


def _stated(value: Any, text: str) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        numbers = {round(float(n), 6) for n in _NUMBER.findall(text)}
        return round(float(value), 6) in numbers
    return str(value).lower() in text.lower()


@dataclass
class Source:
    """An argument traced to earlier outputs."""

    item: Item
    turn: Turn
    turn_index: int
    call: dict[str, Any]
    param: str
    value: Any
    #: (field, holding object, list position, same turn?, turn) of every output leaf with that value
    origins: list[tuple[str, dict | None, int, bool, int]]
    #: every leaf seen so far, by (turn, field): distinct values
    seen: dict[tuple[int, str], set]


def traced_arguments(item: Item) -> list[Source]:
    """Every argument of the item's calls that an earlier output provides and nobody stated
    (traced once per item: four rules read them)."""
    if "traced" not in item.derived:
        item.derived["traced"] = list(_trace_arguments(item))
    return item.derived["traced"]


def _trace_arguments(item: Item) -> Iterator[Source]:
    by_value: dict[Any, list[tuple[str, dict | None, int, int]]] = defaultdict(list)
    seen: dict[tuple[int, str], set] = defaultdict(set)
    stated = ""
    for ti, turn in enumerate(item.turns()):
        stated += "\n" + turn.query
        for m in turn.messages:
            if m.get("role") == "tool":
                content = m.get("content")
                try:
                    out = json.loads(content) if isinstance(content, str) else content
                except json.JSONDecodeError:
                    out = content
                for key, value, parent, pos in _leaves(out):
                    if key is not None:
                        by_value[_norm(value)].append((key, parent, pos, ti))
                        seen[(ti, key)].add(_norm(value))
                continue
            for call in m.get("tool_calls") or [] if m.get("role") == "assistant" else []:
                for param, value in call_arguments(call).items():
                    for v in value if isinstance(value, list) else [value]:
                        if _trivial(v) or isinstance(v, (dict, list)) or _stated(v, stated):
                            continue
                        hits = by_value.get(_norm(v))
                        if hits:
                            origins = [(k, p, pos, t == ti, t) for k, p, pos, t in hits]
                            # the leaves seen up to this call: earlier turns' are complete, this turn's copied
                            upto = {k: (set(vs) if k[0] == ti else vs) for k, vs in seen.items()}
                            yield Source(item, turn, ti, call, param, v, origins, upto)


def _param_description(item: Item, call: dict[str, Any], param: str) -> str:
    for t in item.tools:
        if t.get("name") == call_name(call):
            return str(((t.get("parameters") or {}).get("properties") or {}).get(param, {}).get("description", ""))
    return ""


# ----------------------------------------------------------------------------- rules
def provenance(data: Dataset) -> list[Figure]:
    """Arguments from outputs: fields sharing no word with the parameter, fields of another quantity,
    and references whose candidates are several with nothing in the query to choose one."""
    unrelated = _Counter("unrelated_field", "output-sourced arguments whose source field shares no word with the parameter")
    other_q = _Counter("other_quantity", "output-sourced numeric arguments taken from a field of another quantity")
    ambiguous = _Counter(
        "ambiguous_reference",
        "output-sourced arguments whose referred turn's outputs hold 2+ values for the field, with no cue in the query",
    )
    for item in data.items:
        if item.kind != "multi_turn":
            continue
        for src in traced_arguments(item):
            fields = [o[0] for o in src.origins]
            name = call_name(src.call)
            where = f"{item.item_id} turn {src.turn_index}: {name}({src.param}={src.value!r}) <- {sorted(set(fields))}"
            related = [f for f in fields if f == src.param or shares_word(f, src.param) or _same_base(f, src.param)]
            unrelated.add(not related, where)
            if isinstance(src.value, (int, float)):
                pq = quantity(src.param, _param_description(item, src.call, src.param))
                fq = {quantity(f) for f in fields}
                other_q.add(bool(pq) and pq not in fq and bool(fq - {None}), where)
            best = related[0] if related else fields[0]
            turn = max(o[4] for o in src.origins if o[0] == best)  # the output referred to: the latest holding it
            candidates = {v for (t, f), vs in src.seen.items() if t == turn and singular(f) == singular(best) for v in vs}
            ambiguous.add(len(candidates) >= 2 and not _DISAMBIGUATORS.search(src.turn.query), where + f" ({len(candidates)} candidates)")
    return [unrelated.figure(), other_q.figure(), ambiguous.figure()]


def _same_base(a: str, b: str) -> bool:
    ta = [t for t in name_tokens(a) if t not in ROLE_PREFIXES]
    tb = [t for t in name_tokens(b) if t not in ROLE_PREFIXES]
    return bool(ta) and ta == tb


def _unit_params(args: dict[str, Any]) -> tuple[str | None, str | None]:
    src = dst = None
    for p in args:
        toks = name_tokens(p)
        if len(toks) >= 2 and toks[-1] in ("unit", "units", "currency"):
            if toks[0] in ("from", "source", "input", "base", "src"):
                src = p
            elif toks[0] in ("to", "target", "output", "dst"):
                dst = p
    return src, dst


def conversions(data: Dataset) -> list[Figure]:
    """Unit conversions: source unit contradicting the unit stored beside the value; no-op conversions."""
    contra = _Counter("unit_contradiction", "conversions of an output value whose from-unit differs from the unit stored beside it")
    noop = _Counter("noop_conversion", "conversions whose source and target unit are the same")
    for item in data.items:
        for turn in item.turns():
            for _, call in turn.calls:
                args = call_arguments(call)
                src, dst = _unit_params(args)
                if src and dst:
                    noop.add(str(args[src]).lower() == str(args[dst]).lower(), f"{item.item_id}: {call_name(call)}({args})")
        if item.kind != "multi_turn":
            continue
        for s in traced_arguments(item):
            args = call_arguments(s.call)
            src, _ = _unit_params(args)
            if not src or not isinstance(s.value, (int, float)) or s.param == src:
                continue
            allowed = _param_enum(item, s.call, src)
            units = set()
            for _f, parent, _pos, _same, _t in s.origins:
                for k, v in (parent or {}).items():
                    is_unit = name_tokens(k) and name_tokens(k)[-1] in ("unit", "units", "currency") and isinstance(v, str)
                    if is_unit and (allowed is None or v.lower() in allowed):  # a temperature unit says nothing of a speed
                        units.add(v.lower())
            if units:
                contra.add(
                    str(args[src]).lower() not in units, f"{item.item_id}: {call_name(s.call)}({args}) but the source says {sorted(units)}"
                )
    return [contra.figure(), noop.figure()]


def _param_enum(item: Item, call: dict[str, Any], param: str) -> set[str] | None:
    for t in item.tools:
        if t.get("name") == call_name(call):
            enum = ((t.get("parameters") or {}).get("properties") or {}).get(param, {}).get("enum")
            return {str(e).lower() for e in enum} if enum else None
    return None


@functools.lru_cache(maxsize=1 << 16)
def _normalise_text(text: str) -> str:  # a description is compared with every query that calls it
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def _pasted(description: str, query: str) -> bool:
    d = _normalise_text(description)
    return len(d.split()) >= 4 and d in _normalise_text(query)


def _named(name: str, description: str, query: str) -> bool:
    """The query names the function: its description pasted, its code name, or all its object words."""
    if _pasted(description, query) or name.lower() in query.lower():
        return True
    obj = [t for t in name_tokens(name) if t not in VERBS]
    qwords = {singular(w) for w in re.findall(r"[a-z]+", query.lower())}
    return len(obj) >= 2 and all(singular(t) in qwords for t in obj) and any(t in qwords for t in name_tokens(name) if t in VERBS)


def queries(data: Dataset) -> list[Figure]:
    """Descriptions pasted into user messages; nested calls the user named; stock openers."""
    pasted = _Counter("pasted_description", "calls whose function description is pasted verbatim into the user message")
    nested = _Counter("nested_named", "calls that need a same-turn output (nested) whose function the user names")
    descriptions_cache: dict[str, dict[str, str]] = {}
    for item in data.items:
        descs = descriptions_cache.setdefault(item.item_id, item.descriptions)
        turns = item.turns()
        for turn in turns:
            for rnd, call in turn.calls:
                name = call_name(call)
                pasted.add(_pasted(descs.get(name, ""), turn.query), f"{item.item_id}: {name} in {turn.query[:160]!r}")
        if item.kind != "multi_turn":
            continue
        nested_calls = {(s.turn_index, id(s.call)) for s in traced_arguments(item) if all(o[3] for o in s.origins)}
        for ti, turn in enumerate(turns):
            for rnd, call in turn.calls:
                if rnd > 0 and (ti, id(call)) in nested_calls:
                    name = call_name(call)
                    nested.add(_named(name, descs.get(name, ""), turn.query), f"{item.item_id}: {name} in {turn.query[:160]!r}")
    return [pasted.figure(), nested.figure()]


_ORIGIN_SIDE = frozenset({"origin", "from", "departure", "pickup"})
_DESTINATION_SIDE = frozenset({"destination", "to", "arrival", "dropoff"})
#: a determiner right before a preposition: a phrase whose words came out of order ('comment the on post')
_BROKEN_ORDER = re.compile(r"\b(the|a|an|my|your) (on|from|to|in|into|onto|for|with|by|at|of|about|between)\b", re.I)
_PLACE_WORDS = frozenset({"city", "location", "place", "airport", "address", "station", "country", "region"})
_ZONE_PARAM = re.compile(r"(^|_)(time_?zone|tz)($|_)", re.I)
_UNIT_WORD = re.compile(r"\bunits?\b", re.I)
_LABEL = re.compile(r"(?:^|[.!?]\s+)(?:For the|The)\s+([a-z][a-z ]{1,40}?):", re.I)


def _object_words(function: str) -> str:
    """A function's object in words, its leading verb left out ('create_social_post' -> 'social post')."""
    toks = list(name_tokens(function))
    return " ".join(toks[1:] if len(toks) > 1 and toks[0] in VERBS else toks)


def meaning(data: Dataset) -> list[Figure]:
    """What a reader of the conversation finds wrong although every call executes: a value of
    the trip's origin where the destination is meant, a call repeated with the same arguments
    in the next turn, a reference to a field several earlier turns gave with nothing to say
    which, words out of order, a time-zone conversion called a unit conversion, a summary
    label made from the category's name."""
    origin = _Counter(
        "origin_for_destination",
        "output-sourced place arguments naming no side, taken from an origin field while the same object holds a destination",
    )
    repeated = _Counter("repeated_call", "calls of a multi-turn item repeating a call of the previous turn (same name and arguments)")
    vague = _Counter(
        "vague_earlier_reference",
        "output-sourced arguments whose field took other values in other earlier turns, from before the last one, with no cue",
    )
    broken = _Counter("broken_word_order", "user messages with a determiner right before a preposition ('comment the on post')")
    zone = _Counter("time_zone_as_unit", "user messages asking a time-zone conversion as a conversion into another unit")
    label = _Counter("category_label", "summaries labelled with words of the category's name that name no object of the turn's calls")
    for item in data.items:
        turns = item.turns()
        category = set(name_tokens(item.category))
        for ti, turn in enumerate(turns):
            broken.add(bool(_BROKEN_ORDER.search(turn.query)), f"{item.item_id}: {turn.query[:160]!r}")
            zoned = [c for _, c in turn.calls if any(_ZONE_PARAM.search(p) for p in call_arguments(c))]
            if zoned:
                united = any(name_tokens(p)[-1:] in (("unit",), ("units",)) for _, c in turn.calls for p in call_arguments(c))
                zone.add(bool(_UNIT_WORD.search(turn.query)) and not united, f"{item.item_id}: {turn.query[:160]!r}")
            if turn.summary and category:
                objects = {_object_words(call_name(c)) for _, c in turn.calls}
                words_ = [m.group(1).lower().strip() for m in _LABEL.finditer(turn.summary)]
                bad = [w for w in words_ if w not in objects and set(w.split()) <= category]
                label.add(bool(bad), f"{item.item_id}: {bad} in {turn.summary[:160]!r}")
            if item.kind == "multi_turn" and ti:
                before = {(call_name(c), json.dumps(call_arguments(c), sort_keys=True)) for _, c in turns[ti - 1].calls}
                for _, c in turn.calls:
                    key = (call_name(c), json.dumps(call_arguments(c), sort_keys=True))
                    repeated.add(key in before, f"{item.item_id} turn {ti}: {key[0]}({key[1][:120]})")
        if item.kind != "multi_turn":
            continue
        item_turns = item.turns()
        for src in traced_arguments(item):
            ptoks = set(name_tokens(src.param))
            if not ptoks & (_ORIGIN_SIDE | _DESTINATION_SIDE):
                taken_from_origin = False
                for f, parent, _pos, _same, _t in src.origins:
                    if (
                        set(name_tokens(f)) & _ORIGIN_SIDE
                        and set(name_tokens(f)) & _PLACE_WORDS
                        and any(set(name_tokens(k)) & _DESTINATION_SIDE and _same_base(k, f) for k in (parent or {}))
                    ):
                        taken_from_origin = True
                # a value some output also gives under a name of no side ('place_id' of a listing) came from there
                unsided = any(not set(name_tokens(f)) & (_ORIGIN_SIDE | _DESTINATION_SIDE) for f, *_ in src.origins)
                taken_from_origin = taken_from_origin and not unsided
                sided = any(
                    set(name_tokens(f)) & (_ORIGIN_SIDE | _DESTINATION_SIDE) and set(name_tokens(f)) & _PLACE_WORDS for f, *_ in src.origins
                )
                if sided:
                    origin.add(taken_from_origin, f"{item.item_id} turn {src.turn_index}: {call_name(src.call)}({src.param}={src.value!r})")
            earlier = [o for o in src.origins if not o[3]]
            if not earlier:
                continue
            field_ = singular(earlier[0][0])
            holders = {t for (t, f), vs in src.seen.items() if t < src.turn_index and singular(f) == field_ and vs}
            values = {v for (t, f), vs in src.seen.items() if t < src.turn_index and singular(f) == field_ for v in vs}
            latest = max(o[4] for o in earlier)
            # a reply that supplies what a split request lacked ('the amount is 25; please continue') asks
            # nothing itself: the request, and its cue, is the message before, which made no call
            asked = src.turn.query
            if src.turn_index and not item_turns[src.turn_index - 1].calls:
                asked = f"{item_turns[src.turn_index - 1].query} {asked}"
            vague.add(
                len(holders) >= 2 and len(values) >= 2 and latest < max(holders) and not _DISAMBIGUATORS.search(asked),
                f"{item.item_id} turn {src.turn_index}: {call_name(src.call)}({src.param}={src.value!r}) in {src.turn.query[:120]!r}",
            )
    return [origin.figure(), repeated.figure(), vague.figure(), broken.figure(), zone.figure(), label.figure()]


def _opener(text: str, n: int = 3) -> str:
    return " ".join(re.findall(r"[a-z']+", text.lower())[:n])


def language(data: Dataset) -> list[Figure]:
    """How varied the language is: user messages and summaries opening with the six most
    common openers; summaries with an ungrammatical plural ('1 items')."""
    user_openers: Counter[str] = Counter()
    summary_openers: Counter[str] = Counter()
    bad_plural = _Counter("bad_plural", "assistant texts with '1 <plural>' ('1 items')")
    for item in data.items:
        for turn in item.turns():
            user_openers[_opener(turn.query)] += 1
            if turn.summary:
                summary_openers[_opener(turn.summary)] += 1
                bad_plural.add(
                    bool(re.search(r"(?<![\d.])1 (items|results|entries|matches|flights|hotels|files|messages)\b", turn.summary)),
                    turn.summary,
                )
    figs = []
    for name, counter, what in (("stock_user_openers", user_openers, "user"), ("stock_summary_openers", summary_openers, "summary")):
        top = counter.most_common(6)
        figs.append(
            Figure(
                name,
                sum(c for _, c in top),
                sum(counter.values()),
                f"{what} messages opening with one of the six most common 3-word openers",
                [f"{o!r}: {c}" for o, c in top],
            )
        )
    figs.append(bad_plural.figure())
    return figs


def summaries(data: Dataset) -> list[Figure]:
    """Summaries that drop a field the user asked for, or state a number no output or user said."""
    dropped = _Counter("summary_drops_asked_field", "summaries leaving out the value of an output field the user's request names")
    invented = _Counter("summary_unsupported_number", "summaries stating a number that no output, query or system text holds")
    for item in data.items:
        numbers = _numbers_in(item.system)  # of the text so far: system, queries, outputs (each text read once)
        for turn in item.turns():
            numbers |= _numbers_in(turn.query)
            if not turn.outputs:
                continue
            for _, out in turn.outputs:
                numbers |= _numbers_in(json.dumps(out) if not isinstance(out, str) else out)
            if not turn.summary:
                continue
            qwords = {singular(w) for w in re.findall(r"[a-z]+", turn.query.lower())}
            missing = []
            for _, out in turn.outputs[-1:]:
                for key, value, _p, _i in _leaves(out):
                    if key is None or _trivial(value) or isinstance(value, bool):
                        continue
                    toks = [singular(t) for t in name_tokens(key) if t not in ("id", "is")]
                    if toks and all(t in qwords for t in toks) and not _stated(value, turn.summary):
                        missing.append(key)
            dropped.add(bool(missing), f"{item.item_id}: asked {sorted(set(missing))} in {turn.query[:120]!r}")
            extra = [n for n in _NUMBER.findall(turn.summary) if round(float(n), 6) not in numbers and not _round_of(float(n), numbers)]
            invented.add(bool(extra), f"{item.item_id}: {extra} in {turn.summary[:160]!r}")
    return [dropped.figure(), invented.figure()]


def _numbers_in(text: str) -> set[float]:
    return {round(float(n), 6) for n in _NUMBER.findall(text)}


def _round_of(n: float, numbers: set[float]) -> bool:
    return any(abs(n - m) < 0.51 or (m and abs(n - m) / abs(m) < 0.01) for m in numbers) or n <= 31  # counts, days, ordinals


def coverage(data: Dataset) -> list[Figure]:
    """Functions of the pool called by items of each kind, and by the single-turn kinds together."""
    pool = data.pool_functions()
    used: dict[str, set[str]] = defaultdict(set)
    for item in data.items:
        for turn in item.turns():
            for _, call in turn.calls:
                used[item.kind or "?"].add(call_name(call))
        if item.kind == "irrelevance":  # an irrelevance item covers the function it withholds
            used["irrelevance"].update(item.functions)
    figs = [Figure(f"coverage_{k}", len(v & pool), len(pool), f"pool functions used by {k} items") for k, v in sorted(used.items())]
    single = set().union(*(used.get(k, set()) for k in ("single", "parallel", "multiple", "irrelevance")))
    figs.append(
        Figure("coverage_single_turn", len(single & pool), len(pool), "pool functions used by single/parallel/multiple/irrelevance items")
    )
    return figs


def request_signature(item: Item, loose: bool = False) -> str:
    """What an item asks and does: its kind, each user turn's words (``loose``: numbers and word
    endings aside) with the calls that answer it (``loose``: by name only). Items alike here
    teach the same thing however their replies are worded (the lint's duplicates, the SFT mix's
    de-duplication)."""
    parts = []
    for turn in item.turns():
        q = _normalise_text(turn.query)
        if loose:
            q = re.sub(r"\d+", "#", re.sub(r"\b(\w+)\b", lambda m: m.group(1)[:6], q))
        calls = sorted(f"{call_name(c)}{'' if loose else json.dumps(call_arguments(c), sort_keys=True)}" for _, c in turn.calls)
        parts.append(q + "|" + ",".join(calls))
    return item.kind + "||" + "||".join(parts)


def duplicates(data: Dataset) -> list[Figure]:
    """Items repeating another's queries and calls exactly; near-duplicates (same calls, same words
    up to numbers and word endings)."""
    exact = _Counter("exact_duplicates", "items whose queries and calls repeat an earlier item's")
    near = _Counter("near_duplicates", "items whose queries (numbers and word endings aside) and functions repeat an earlier item's")
    seen_exact: set[str] = set()
    seen_near: set[str] = set()
    for item in data.items:
        e, n = request_signature(item), request_signature(item, loose=True)
        exact.add(e in seen_exact, f"{item.item_id}: {e[:160]}")
        near.add(n in seen_near, f"{item.item_id}: {n[:160]}")
        seen_exact.add(e)
        seen_near.add(n)
    return [exact.figure(), near.figure()]


def conversation_length(data: Dataset) -> list[Figure]:
    """User turns and calls per multi-turn item; multi-turn items with a single user turn."""
    multi = [i for i in data.items if i.kind == "multi_turn"]
    turns = [len(i.turns()) for i in multi]
    calls = [sum(len(t.calls) for t in i.turns()) for i in multi]
    single = sum(1 for t in turns if t < 2)
    return [
        Figure("user_turns_per_multi_turn", sum(turns), len(multi), "user turns, total over multi-turn items (share = mean)"),
        Figure("calls_per_multi_turn", sum(calls), len(multi), "calls, total over multi-turn items (share = mean)"),
        Figure("single_turn_multi_turn", single, len(multi), "multi-turn items with one user turn"),
    ]


def exports(data: Dataset) -> list[Figure]:
    """Items whose system prompt repeats the function JSON that ``tools`` already holds."""
    dup = _Counter("duplicated_tool_json", "items whose system prompt lists the functions as JSON while `tools` holds them too")
    for item in data.items:
        if not item.tools:
            continue
        system = item.system
        names = [t.get("name", "") for t in item.tools]
        dup.add(bool(names) and all(f'"name": "{n}"' in system or f'"name":"{n}"' in system for n in names[:3]), item.item_id)
    return [dup.figure()]


# ----------------------------------------------------------------------------- pairs
def leakage(data: Dataset) -> list[Figure]:
    """Preference pairs made from held-out episodes (the model would train on its evaluation)."""
    held = {i.episode_id for i in data.items if i.split in ("heldout", "test") and i.episode_id}
    held_traj = {i.item_id for i in data.items if i.split in ("heldout", "test")}
    c = _Counter("heldout_pairs", "preference pairs from held-out episodes")
    for p in data.pairs:
        c.add((p.episode_id and p.episode_id in held) or (p.traj_id and p.traj_id in held_traj), f"{p.pair_id}: {p.episode_id}")
    return [c.figure()]


def _styles(messages: list[dict[str, Any]]) -> list[tuple]:
    """(role, content is None, call id patterns, summary opener) per message; a summary is a
    text answer right after tool outputs."""
    out = []
    for i, message in enumerate(messages):
        calls = message.get("tool_calls") or []
        ids = tuple(sorted({re.sub(r"\d+", "N", str(c.get("id", ""))) for c in calls}))
        content = message.get("content")
        after_tool = i > 0 and messages[i - 1].get("role") == "tool"
        text_open = _opener(str(content), 2) if content and not calls and after_tool else ""
        out.append((message.get("role"), content is None, ids, text_open))
    return out


def _first_difference(a: list[dict], b: list[dict]) -> int:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return i


def pair_style(data: Dataset) -> list[Figure]:
    """Pairs whose rejected side differs from the chosen in more than the judged error: call id
    patterns, ``content`` None against "", calls split one per message, another summary opener;
    and corruptions that break a date or id (implausible errors)."""
    style = _Counter("pair_style_difference", "pairs whose rejected side differs from the chosen in style, not only in the error")
    implausible = _Counter(
        "implausible_corruption", "pairs whose rejected call or text breaks the format of a date or id of the chosen side"
    )
    for p in data.pairs:
        i = _first_difference(p.chosen, p.rejected)
        chosen, rejected = p.chosen[i:], p.rejected[i:]
        diffs = []
        cs, rs = _styles(p.chosen)[i:], _styles(p.rejected)[i:]
        c_ids = {s[2] for s in cs if s[2]}
        r_ids = {s[2] for s in rs if s[2]}
        if r_ids - c_ids and c_ids:
            diffs.append(f"call ids {sorted(r_ids - c_ids)}")
        c_none = {s[1] for s in cs if s[2]}
        r_none = {s[1] for s in rs if s[2]}
        if c_none and r_none and c_none != r_none:
            diffs.append("content None vs ''")
        c_group = [len(m.get("tool_calls") or []) for m in chosen if m.get("tool_calls")]
        r_group = [len(m.get("tool_calls") or []) for m in rejected if m.get("tool_calls")]
        if c_group and r_group and sum(c_group) == sum(r_group) and c_group != r_group:
            diffs.append(f"grouping {c_group} vs {r_group}")
        c_open = {s[3] for s in cs if s[3]}
        r_open = {s[3] for s in rs if s[3]}
        if c_open and r_open and not c_open & r_open:
            diffs.append(f"summary opener {sorted(r_open)} vs {sorted(c_open)}")
        style.add(bool(diffs), f"{p.pair_id}: {'; '.join(diffs)}")
        c_args = [call_arguments(c) for m in chosen for c in m.get("tool_calls") or []]
        r_args = [call_arguments(c) for m in rejected for c in m.get("tool_calls") or []]
        broken = []
        for ca, ra in zip(c_args, r_args, strict=False):
            for k, v in ca.items():
                rv = ra.get(k)
                if isinstance(v, str) and rv is not None and rv != v:
                    for pattern in (_DATE, _ID):
                        if pattern.match(v) and not pattern.match(str(rv)):
                            broken.append(f"{k}: {v!r} -> {rv!r}")
        # a reply corrupted against the same outputs (where the calls differ, each reply reports its own real outputs,
        # and the tool messages are outputs, not corruptions)
        said = lambda messages, role: [str(m.get("content") or "") for m in messages if m.get("role") == role]
        if said(chosen, "tool") == said(rejected, "tool"):
            broken += _broken_tokens(" ".join(said(chosen, "assistant")), " ".join(said(rejected, "assistant")))
        if c_args or r_args or any(m.get("content") for m in rejected):
            implausible.add(bool(broken), f"{p.pair_id}: {broken}")
    return [style.figure(), implausible.figure()]


def _broken_tokens(chosen: str, rejected: str) -> list[str]:
    """Tokens of the chosen text (a date, an id) whose counterpart in the rejected text lost that form."""
    import difflib

    a, b = re.findall(r"[^\s\"',;()]+", chosen), re.findall(r"[^\s\"',;()]+", rejected)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "replace" and i2 - i1 == j2 - j1:
            for x, y in zip(a[i1:i2], b[j1:j2], strict=True):
                if any(pt.match(x) and not pt.match(y) for pt in (_DATE, _ID)):
                    out.append(f"{x!r} -> {y!r}")
    return out


RULES: dict[str, Callable[[Dataset], list[Figure]]] = {
    "provenance": provenance,
    "conversions": conversions,
    "meaning": meaning,
    "queries": queries,
    "language": language,
    "summaries": summaries,
    "coverage": coverage,
    "duplicates": duplicates,
    "conversation_length": conversation_length,
    "exports": exports,
    "leakage": leakage,
    "pair_style": pair_style,
}
__all__ = ["RULES", "Figure", "traced_arguments", "words"]
