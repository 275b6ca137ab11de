"""The words of schemas and values, defined once for every stage.

What a name's tokens are, singular forms, what an identifier is, which words are generic,
role prefixes and unit words, and the leaves of a JSON value. The dependency judge, the
planner, the simulator, the translators and the error judge all read fields through these,
so they cannot disagree about the same field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")
WORD_PATTERN = re.compile(r"[a-z][a-z0-9]*")

#: verbs and particles of function names: what remains is the object a function acts on
VERBS = frozenset(
    [
        "get",
        "list",
        "search",
        "find",
        "check",
        "set",
        "add",
        "remove",
        "create",
        "delete",
        "update",
        "cancel",
        "book",
        "plan",
        "start",
        "stop",
        "calculate",
        "compute",
        "convert",
        "estimate",
        "fetch",
        "lookup",
        "look",
        "retrieve",
        "read",
        "write",
        "send",
        "post",
        "put",
        "make",
        "place",
        "pay",
        "transfer",
        "schedule",
        "reschedule",
        "move",
        "copy",
        "share",
        "rate",
        "redeem",
        "change",
        "save",
        "download",
        "upload",
        "compress",
        "extract",
        "is",
        "has",
        "can",
        "do",
        "run",
        "execute",
        "show",
        "view",
        "open",
        "close",
        "enable",
        "disable",
        "toggle",
        "submit",
        "request",
        "verify",
        "validate",
        "query",
        "by",
        "to",
        "from",
        "for",
        "of",
        "in",
        "on",
        "at",
        "with",
        "a",
        "an",
        "the",
        "and",
        "or",
        "new",
        "my",
        "all",
        "current",
    ]
)
#: words that say nothing about what a value is
GENERIC = frozenset(
    [
        "id",
        "ids",
        "name",
        "type",
        "value",
        "data",
        "info",
        "information",
        "result",
        "results",
        "item",
        "items",
        "the",
        "a",
        "an",
        "of",
        "to",
        "for",
        "in",
        "on",
        "at",
        "by",
        "is",
        "are",
        "be",
        "it",
        "this",
        "that",
        "with",
        "from",
        "as",
        "or",
        "and",
        "any",
        "which",
        "when",
        "where",
        "what",
        "its",
        "their",
        "user",
        "number",
        "string",
        "list",
        "true",
        "false",
        "new",
        "current",
        "one",
    ]
)
#: field/parameter names whose exact match alone is weak evidence
GENERIC_FIELDS = frozenset(
    [
        "name",
        "status",
        "message",
        "type",
        "value",
        "description",
        "title",
        "success",
        "result",
        "data",
        "info",
        "date",
        "time",
        "count",
        "note",
        "notes",
        "comment",
        "error",
        "reason",
        "label",
        "kind",
        "amount",
        "total",
        "price",
        "quantity",
    ]
)
ROLE_PREFIXES = frozenset(
    [
        "origin",
        "destination",
        "source",
        "target",
        "from",
        "to",
        "src",
        "dst",
        "parent",
        "primary",
        "input",
        "output",
        "old",
        "new",
        "start",
        "end",
        "sender",
        "recipient",
        "receiver",
        "payer",
        "payee",
    ]
)
UNIT_WORDS = frozenset(
    [
        "miles",
        "mile",
        "km",
        "kilometers",
        "kilometres",
        "meters",
        "metres",
        "m",
        "feet",
        "ft",
        "minutes",
        "minute",
        "seconds",
        "second",
        "hours",
        "hour",
        "days",
        "usd",
        "eur",
        "gbp",
        "percent",
        "celsius",
        "fahrenheit",
        "kg",
        "lbs",
        "pounds",
        "grams",
        "bytes",
        "kb",
        "mb",
        "gb",
    ]
)
#: a converter's *target* side is the user's choice, never fed from an output
TARGET_SIDE_BASES = frozenset(["unit", "units", "currency", "language", "format", "timezone", "locale"])
ALIAS_GROUPS = (
    frozenset({"content", "text", "body"}),
    frozenset({"url", "link", "uri", "href"}),
    frozenset({"symbol", "ticker"}),
    frozenset({"email", "email_address"}),
    frozenset({"query", "keyword", "keywords", "search_query", "search_term"}),
    frozenset({"path", "file_path", "filepath"}),
    frozenset({"username", "user_name", "handle"}),
)
ID_TOKENS = frozenset({"id", "ids", "uuid", "token", "key", "handle"})
#: a string output named like this is a gate (a boolean output always is one)
GATE_NAMES = frozenset(["status", "state", "availability", "available"])
#: what a check says about its subject; not part of the subject itself
GATE_ADJECTIVES = frozenset(
    [
        "exist",
        "available",
        "availability",
        "status",
        "state",
        "valid",
        "validity",
        "sufficient",
        "open",
        "enabled",
        "active",
        "eligible",
        "eligibility",
        "ready",
    ]
)
#: only functions that look something up can be premises; the status an action returns is its outcome
QUERY_VERBS = frozenset(["check", "get", "is", "has", "verify", "validate", "lookup", "can", "search", "list", "find", "fetch", "test"])
#: outcome flags of actions: they report what happened, they are not gates for another call
OUTCOME_FIELDS = frozenset({"success", "ok", "succeeded", "done", "deleted", "updated", "removed", "cancelled"})
CONVERSION_WORDS = frozenset({"convert", "conversion", "converter", "converts", "convertor"})


@lru_cache(maxsize=65536)
def name_tokens(name: str) -> tuple[str, ...]:
    """'originPlaceId' / 'origin_place_id' -> ('origin', 'place', 'id')."""
    return tuple(t for t in _SPLIT.split(_CAMEL.sub("_", name).lower()) if t)


@lru_cache(maxsize=65536)
def singular(word: str) -> str:
    if word == "ids":
        return "id"
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=65536)
def text_words(text: str) -> frozenset[str]:
    """Informative words of a description, singular."""
    return frozenset(singular(w) for w in WORD_PATTERN.findall(text.lower()) if w not in GENERIC and len(w) > 2)


#: last tokens of a field name that make its value an identifier a user does not make up
IDENTIFIER_TOKENS = ID_TOKENS | {"code", "number"}


def is_identifier_tokens(tokens: tuple[str, ...], description: str = "") -> bool:
    """A field whose tokens end in an identifier word, or that is described as an identifier."""
    return bool(tokens) and (tokens[-1] in IDENTIFIER_TOKENS or description.lower().startswith(("identifier", "id of", "unique id")))


@lru_cache(maxsize=65536)  # a pure function of strings, called millions of times a run
def is_identifier(name: str, description: str = "") -> bool:
    """``order_id``, ``orderId``, ``session_token``, ``confirmation_code``, ``account_number``:
    values an earlier output or the user's world provides, never invented prose."""
    return is_identifier_tokens(name_tokens(name), description)


def looks_like_code(name: str) -> bool:
    """A function name a user would not write by accident (snake_case, camelCase, digits):
    those are the names a query may never contain. A plain English word ('search') is not."""
    return bool(re.search(r"[_.\-]|[a-z][A-Z]|\d", name))


def words(name: str) -> str:
    """A parameter or function name as plain words: 'origin_place_id' -> 'origin place id'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return re.sub(r"[_\-.]+", " ", spaced).strip().lower()


def snake_name(name: str) -> str:
    """'originPlaceId' -> 'origin_place_id'."""
    return "_".join(name_tokens(name))


@lru_cache(maxsize=65536)  # a pure function of strings, called millions of times a run
def singular_name(name: str) -> str:
    """The singular of a field name's last word: 'items' -> 'item', 'orderIds' -> 'order_id'."""
    toks = name_tokens(name)
    return "_".join(toks[:-1] + (singular(toks[-1]),)) if toks else name


def is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def leaves(value: Any, key: str | None = None, *, whole_lists: bool = False) -> Iterator[tuple[str | None, Any]]:
    """(field name, scalar) for every scalar of a JSON value in document order; elements of a
    list keep the list's field name. ``whole_lists``: also yield every list of scalars as one
    value (a parameter may take the whole list). ``None`` values are no leaves."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, str(k), whole_lists=whole_lists)
    elif isinstance(value, list):
        if whole_lists and key is not None and value and all(is_scalar(v) for v in value):
            yield key, value
        for v in value:
            yield from leaves(v, key, whole_lists=whole_lists)
    elif value is not None:
        yield key, value


#: which physical or accounting quantity a name speaks of; two fields of different quantities
#: never feed each other, whatever their types (a wind speed is no temperature)
QUANTITIES: dict[str, frozenset[str]] = {
    "temperature": frozenset({"temperature", "temp", "celsius", "fahrenheit", "kelvin", "feels"}),
    "speed": frozenset({"speed", "wind", "gust", "kmh", "mph", "knot", "knots", "velocity"}),
    "money": frozenset(
        {"price", "cost", "cash", "amount", "balance", "fee", "fare", "total", "paid", "payment", "spend", "budget", "salary", "usd"}
    ),
    "points": frozenset({"point", "points", "reward", "rewards", "loyalty"}),
    "distance": frozenset({"distance", "km", "kilometer", "kilometre", "mile", "miles", "meter", "metre", "length"}),
    "duration": frozenset({"duration", "minute", "minutes", "hour", "hours", "second", "seconds"}),
    "humidity": frozenset({"humidity"}),
    "percentage": frozenset({"percent", "percentage", "rate", "chance", "probability"}),
    "count": frozenset({"quantity", "count", "shares", "seats", "guests", "passengers", "people", "rooms", "nights"}),
    "coordinate": frozenset({"latitude", "longitude", "lat", "lon", "lng"}),
}


@lru_cache(maxsize=65536)  # a pure function of strings, called millions of times a run
def quantity(name: str, description: str = "") -> str | None:
    """The quantity a field's name (else its description's first words) speaks of, or None."""
    for tokens in (name_tokens(name), tuple(WORD_PATTERN.findall(description.lower()))[:8]):
        for token in reversed(tokens):  # the head word comes last: 'wind_speed' is a speed
            for q, vocab in QUANTITIES.items():
                if token in vocab or singular(token) in vocab:
                    return q
    return None


def shares_word(a: str, b: str) -> bool:
    """Two field names with an informative word in common (singular; generic words ignored)."""
    wa = {singular(t) for t in name_tokens(a)} - GENERIC
    wb = {singular(t) for t in name_tokens(b)} - GENERIC
    return bool(wa & wb)


#: last tokens of a field whose value names a thing of the world (a file, a page, an address):
#: like an identifier, it must exist there, so nobody may make one up for a real environment
WORLD_REFERENCE_TOKENS = frozenset({"path", "url", "uri", "link", "href", "filename", "directory", "dir", "folder", "email"})


def refers_to_world(name: str) -> bool:
    """``file_path``, ``url``, ``download_link``, ``email``: values only the world holds."""
    toks = name_tokens(name)
    return bool(toks) and (singular(toks[-1]) in WORLD_REFERENCE_TOKENS or is_identifier_tokens(toks[:-1] + (singular(toks[-1]),)))
