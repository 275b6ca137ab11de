"""The local dependency graph (paper section 3.4): candidates, a schema pre-filter and judging.

For every function ``t`` of a category, up to ``candidates`` other functions are sampled
(:func:`sample_candidates`) and a judge decides which of them ``t`` *depends on*: an edge
``src -> dst`` means the output of ``src`` is

- a ``premise`` for calling ``dst`` (check_file_exists -> download_file: a yes/no, an
  availability or a status about the thing ``dst`` acts on; a state ``src`` makes, see
  :func:`state_premise`; or a look at the very thing ``dst`` then acts on, see
  :func:`look_premise`),
- a ``full_input`` of ``dst`` (every required parameter of ``dst`` can be filled from one
  output of ``src``: plan_route.route_id -> start_navigation(route_id)), or
- a ``partial_input`` (some parameters: get_distance -> convert_distance(value, from_unit, to_unit)).

The paper samples candidates "from the same category and class". Our classes are
fine-grained (a built-in category of 14 tools has 4-6 classes, e.g. 'Route planning' vs
'Turn-by-turn navigation'), and the producer of an id is usually in another class than its
consumer, so class-only sampling would starve the graph. Candidates are therefore taken from
the same class first and then filled up from the rest of the category.

The offline judge (:func:`judge_pair`) reads the schemas: every leaf of ``src``'s response
(recursively, array items included) is matched against every parameter of ``dst`` by name,
aliases (``id`` under ``orders[]`` = ``order_id``; singular/plural; role prefixes such as
``origin_``/``from_``; unit suffixes such as ``_miles``; ``content``/``text``/``body``), type
and description words. An *echo* (a top-level output field named like one of ``src``'s own
parameters) carries no new information and never feeds an input; it can still make a
premise. Two LLM tasks do the same job with a model (:mod:`magnet_lib.graph.dependency`).

Nested rule (:func:`nested_reason`): ``dst`` is nested after ``src`` when a parameter of
``dst`` is fed with a value a user would not state themselves:

1. an identifier or token produced by ``src`` (names ending in id / ids / uuid / token /
   key / handle, or a field described as an identifier), or
2. a quantity in a unit ``src`` chose, fed to a conversion (``src``'s response has a unit /
   currency field or a unit in the field's name or description, and ``dst`` converts).

Premise edges carry no value and are never nested.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from magnet_lib.llm.task import ParseError, Task, extract_json
from magnet_lib.models import OFFLINE, Edge, EdgeKind, JSONSchema, Tool, stable_hash
from magnet_lib.vocabulary import (
    ALIAS_GROUPS,
    CONVERSION_WORDS,
    GATE_ADJECTIVES,
    GATE_NAMES,
    GENERIC,
    GENERIC_FIELDS,
    OUTCOME_FIELDS,
    QUERY_VERBS,
    ROLE_PREFIXES,
    TARGET_SIDE_BASES,
    UNIT_WORDS,
    VERBS,
    WORD_PATTERN,
    is_identifier_tokens,
    name_tokens,
    quantity,
    singular,
    singular_name,
    snake_name,
    text_words,
)


def _alias_set(name: str) -> frozenset[str]:
    for group in ALIAS_GROUPS:
        if name in group:
            return group
    return frozenset({name})


def object_words(name: str) -> frozenset[str]:
    """What a function acts on: its name without verbs and particles ('download_file_from_url' -> file, url)."""
    return frozenset(singular(t) for t in name_tokens(name) if t not in VERBS and t not in GENERIC and len(t) > 1)


# --------------------------------------------------------------------------- schema profiles


def _types(schema: JSONSchema) -> frozenset[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return frozenset(k for k in kind if k != "null")
    if isinstance(kind, str):
        return frozenset({kind})
    if "enum" in schema or "const" in schema:
        values = schema.get("enum") or [schema.get("const")]
        return frozenset(
            {
                "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else "boolean" if isinstance(v, bool) else "string"
                for v in values
            }
        )
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            out: set[str] = set()
            for option in schema[key]:
                if isinstance(option, dict):
                    out |= _types(option)
            return frozenset(out - {"null"})
    return frozenset()


def _item_types(schema: JSONSchema) -> frozenset[str]:
    items = schema.get("items")
    return _types(items) if isinstance(items, dict) else frozenset()


@dataclass(frozen=True)
class OutputField:
    """One leaf of a response schema."""

    path: str  # e.g. 'places[].place_id'
    name: str  # normalised leaf name, e.g. 'place_id'
    aliases: frozenset[str]  # names this value may go by ('id' under 'orders[]' -> 'order_id')
    types: frozenset[str]
    item_types: frozenset[str]
    description: str
    words: frozenset[str]
    echo: bool  # a top-level field named like one of the function's own parameters
    in_array: bool
    enum: frozenset[str]
    const: bool


@dataclass(frozen=True)
class Param:
    name: str
    tokens: tuple[str, ...]
    types: frozenset[str]
    item_types: frozenset[str]
    description: str
    words: frozenset[str]
    required: bool
    enum: frozenset[str]


@dataclass(frozen=True)
class SchemaProfile:
    """What the judge needs to know about one function, computed once."""

    name: str
    objects: frozenset[str]
    params: tuple[Param, ...]
    outputs: tuple[OutputField, ...]
    required: tuple[str, ...]
    has_unit_field: bool
    is_conversion: bool
    param_words: frozenset[str]
    query: bool  # looks something up (check_/get_/is_...): only these can be premises
    subject: frozenset[str]  # what a check is about: its objects without 'available', 'status', ...
    head: str  # the last object word of the name: what the function acts on ('order' in place_stock_order)
    description_words: frozenset[str] = frozenset()  # words of the function's description

    @property
    def feedable_outputs(self) -> tuple[OutputField, ...]:
        return tuple(o for o in self.outputs if not o.echo)


def _enum(schema: JSONSchema) -> frozenset[str]:
    values = schema.get("enum") or ([schema["const"]] if "const" in schema else [])
    return frozenset(str(v) for v in values)


def _flatten(
    schema: Any,
    prefix: str,
    parent: str,
    own_params: frozenset[str],
    owner_objects: frozenset[str],
    in_array: bool,
    depth: int,
    out: list[OutputField],
) -> None:
    if not isinstance(schema, dict) or depth > 5:
        return
    props = schema.get("properties")
    if isinstance(props, dict) and props:
        for key, sub in props.items():
            if not isinstance(sub, dict):
                continue
            path = f"{prefix}.{key}" if prefix else key
            name = snake_name(key)
            sub_types = _types(sub)
            items = sub.get("items")
            if "array" in sub_types and isinstance(items, dict) and isinstance(items.get("properties"), dict):
                _flatten(items, path + "[]", key, own_params, owner_objects, True, depth + 1, out)
                continue
            if "object" in sub_types and isinstance(sub.get("properties"), dict):
                _flatten(sub, path, key, own_params, owner_objects, in_array, depth + 1, out)
                continue
            aliases = {name}
            if name == "id":  # 'id' inside 'orders[]' or an 'order' object is an order_id
                owner = singular(name_tokens(parent)[-1]) if parent else (sorted(owner_objects)[0] if len(owner_objects) == 1 else "")
                if owner:
                    aliases.add(f"{owner}_id")
            if "array" in sub_types:  # place_ids[] can fill a place_id
                aliases.add(singular_name(name))
            description = str(sub.get("description", ""))
            out.append(
                OutputField(
                    path=path,
                    name=name,
                    aliases=frozenset(aliases),
                    types=sub_types,
                    item_types=_item_types(sub),
                    description=description,
                    words=text_words(description) | frozenset(singular(t) for t in name_tokens(key) if t not in GENERIC),
                    echo=(not in_array and not prefix and name in own_params),
                    in_array=in_array,
                    enum=_enum(sub),
                    const="const" in sub,
                )
            )
        return
    if not prefix and _types(schema) and "object" not in _types(schema):  # a bare scalar/array response
        description = str(schema.get("description", ""))
        name = "_".join(sorted(owner_objects)) or "result"
        out.append(
            OutputField(
                path="<response>",
                name=name,
                aliases=frozenset({name, "result"}),
                types=_types(schema),
                item_types=_item_types(schema),
                description=description,
                words=text_words(description),
                echo=False,
                in_array=False,
                enum=_enum(schema),
                const="const" in schema,
            )
        )


def profile(tool: Tool) -> SchemaProfile:
    """The schema profile of a function (pure; callers cache it per tool)."""
    props = tool.properties
    required = set(tool.required)
    params = []
    for key, sub in props.items():
        sub = sub if isinstance(sub, dict) else {}
        description = str(sub.get("description", ""))
        params.append(
            Param(
                name=snake_name(key),
                tokens=name_tokens(key),
                types=_types(sub),
                item_types=_item_types(sub),
                description=description,
                words=text_words(description),
                required=key in required,
                enum=_enum(sub),
            )
        )
    objects = object_words(tool.name)
    outputs: list[OutputField] = []
    _flatten(tool.response, "", "", frozenset(p.name for p in params), objects, False, 0, outputs)
    has_unit = any(
        o.name in ("unit", "units", "currency")
        or (set(name_tokens(o.name)) & UNIT_WORDS)
        or (o.words & {"mile", "km", "kilometer", "meter", "usd", "minute"})
        for o in outputs
    )
    first_word = frozenset(WORD_PATTERN.findall(tool.description.lower())[:1])
    tokens = name_tokens(tool.name)
    return SchemaProfile(
        name=tool.name,
        objects=objects,
        params=tuple(params),
        outputs=tuple(outputs),
        required=tuple(p.name for p in params if p.required),
        has_unit_field=bool(has_unit),
        is_conversion=bool((set(tokens) | first_word) & CONVERSION_WORDS),
        param_words=frozenset(singular(t) for p in params for t in p.tokens if t not in GENERIC and t not in VERBS),
        query=bool(tokens) and tokens[0] in QUERY_VERBS,
        subject=frozenset(objects - GATE_ADJECTIVES),
        head=next(
            (
                singular(t)
                for t in reversed(tokens)
                if t not in VERBS and t not in GENERIC and singular(t) not in GATE_ADJECTIVES and len(t) > 1
            ),
            "",
        ),
        description_words=frozenset(singular(w) for w in text_words(tool.description)),
    )


class ProfileCache:
    """Profiles by tool name, for one run (a tool is profiled once however often it is judged)."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[Tool, SchemaProfile]] = {}

    def __call__(self, tool: Tool) -> SchemaProfile:
        hit = self._by_name.get(tool.name)
        if hit is not None and (hit[0] is tool or hit[0] == tool):
            return hit[1]
        prof = profile(tool)
        self._by_name[tool.name] = (tool, prof)
        return prof


# --------------------------------------------------------------------------- matching


def _types_compatible(param: Param, out: OutputField) -> float:
    """1.0 same type, < 1 convertible (integer->number, one element of an array, a scalar into
    a one-element array), 0 incompatible. Missing types are compatible with anything."""
    p, o = param.types, out.types
    if not p or not o:
        return 0.9
    numeric = {"number", "integer"}
    if p & o:
        if "array" in p & o and param.item_types and out.item_types and not _scalar_ok(param.item_types, out.item_types):
            return 0.0  # lists of different things
        return 1.0
    if (p & numeric) and (o & numeric):
        return 0.95
    if "array" in o and "array" not in p and out.item_types and _scalar_ok(p, out.item_types):
        return 0.9  # take one element
    if "array" in p and param.item_types and _scalar_ok(param.item_types, o):
        return 0.85  # wrap into a list
    return 0.0


def _scalar_ok(a: frozenset[str], b: frozenset[str]) -> bool:
    numeric = {"number", "integer"}
    return bool(a & b) or bool(a & numeric and b & numeric) or not a or not b


def _target_side(param: Param) -> bool:
    return len(param.tokens) >= 2 and param.tokens[0] in ("to", "target") and "_".join(param.tokens[1:]) in TARGET_SIDE_BASES


def name_match(param: Param, out: OutputField) -> tuple[float, str]:
    """How well the *names* say that ``out`` is the value ``param`` wants (0 = not at all)."""
    best, how = 0.0, ""
    ptoks = param.tokens
    for alias in out.aliases:
        if alias == param.name or singular_name(alias) == singular_name(param.name):
            exact = alias == param.name
            score = (1.0 if exact else 0.9) if param.name not in GENERIC_FIELDS else 0.55
            if score > best:
                best, how = score, "same name" if exact else "singular/plural"
            continue
        if param.name in _alias_set(alias) and param.name != alias:
            if best < 0.85:
                best, how = 0.85, "alias"
            continue
        atoks = name_tokens(alias)
        # role prefix: origin_place_id <- place_id; account_id <- from_account_id
        if len(ptoks) > len(atoks) and ptoks[-len(atoks) :] == atoks and all(t in ROLE_PREFIXES for t in ptoks[: -len(atoks)]):
            if alias not in GENERIC_FIELDS and best < 0.85:
                best, how = 0.85, "role prefix"
        elif len(atoks) > len(ptoks) and atoks[-len(ptoks) :] == ptoks and all(t in ROLE_PREFIXES for t in atoks[: -len(ptoks)]):
            if param.name not in GENERIC_FIELDS and best < 0.8:
                best, how = 0.8, "role prefix"
        # unit suffix: distance <- distance_miles
        elif len(atoks) > len(ptoks) and atoks[: len(ptoks)] == ptoks and all(t in UNIT_WORDS for t in atoks[len(ptoks) :]) and best < 0.8:
            best, how = 0.8, "unit suffix"
    if (
        best == 0.0
        and param.description
        and not is_identifier_tokens(name_tokens(out.name), out.description)
        and not is_identifier_tokens(ptoks, param.description)
    ):
        # the parameter's description names the field: value ('The distance to convert') <- distance
        # (never for identifiers: an id must be named, 'Identifier of a slot of this doctor' is no doctor_id)
        otoks = [singular(t) for t in name_tokens(out.name) if t not in GENERIC]
        if otoks and all(t in param.words for t in otoks) and out.name not in GENERIC_FIELDS:
            best, how = 0.65, "description"
    return best, how


def match_param(param: Param, out: OutputField) -> tuple[float, str]:
    """Score of feeding ``param`` from ``out`` (names x types x enum), and how it matched."""
    if _target_side(param):
        return 0.0, ""
    pq, oq = quantity(param.name, param.description), quantity(out.name, out.description)
    if pq and oq and pq != oq:
        return 0.0, ""  # a wind speed never feeds a temperature, whatever the names share
    names, how = name_match(param, out)
    if names == 0.0:
        return 0.0, ""
    types = _types_compatible(param, out)
    if types == 0.0:
        return 0.0, ""
    score = names * types
    if param.enum and out.enum and not (param.enum & out.enum):
        return 0.0, ""
    if param.enum and not out.enum:
        score *= 0.9
    if "array" in out.types and "array" not in param.types and how == "same name":
        how = "element of array"
    return score, how


FEED_THRESHOLD = 0.6


@dataclass(frozen=True)
class Feed:
    param: str
    field: str  # output path
    score: float
    how: str
    required: bool


@dataclass(frozen=True)
class Verdict:
    """The offline judge's answer for one ordered pair."""

    kind: str
    score: float
    evidence: str
    feeds: tuple[Feed, ...] = ()


def feeds(src: SchemaProfile, dst: SchemaProfile) -> list[Feed]:
    """Parameters of ``dst`` that an output of ``src`` can fill (best field per parameter)."""
    found = []
    outputs = src.feedable_outputs
    related = bool(src.objects & dst.objects)
    for param in dst.params:
        best: tuple[float, str, str] = (0.0, "", "")
        for out in outputs:
            score, how = match_param(param, out)
            if how == "same name" and param.name in GENERIC_FIELDS and related:
                score += 0.15  # 'amount' of a bill -> pay_bill(amount): the same object makes a generic name specific
            if score > best[0]:
                best = (score, how, out.path)
        if best[0] >= FEED_THRESHOLD:
            found.append(Feed(param=param.name, field=best[2], score=round(best[0], 3), how=best[1], required=param.required))
    return found


def premise_signal(src: SchemaProfile, dst: SchemaProfile) -> OutputField | None:
    """A yes/no, availability or status output of ``src`` about what ``dst`` acts on."""
    if not src.query:
        return None
    about_dst = _premise_relevant(src, dst)
    for out in src.outputs:
        if out.name in OUTCOME_FIELDS or out.const or out.in_array:
            continue
        gate = "boolean" in out.types or ("string" in out.types and bool(set(name_tokens(out.name)) & GATE_NAMES))
        if gate and (about_dst or (dst.head and dst.head in out.words)):
            return out
    return None


def _premise_relevant(src: SchemaProfile, dst: SchemaProfile) -> bool:
    """Whether a check by ``src`` is about what ``dst`` acts on: the subject of the check is
    named by ``dst`` (check_file_exists -> download_file_from_url), or both take at least two
    of the same inputs (check_sufficient_funds(account_id, amount) -> pay_bill). One shared
    word is not enough: 'weather' is in every function of a weather service."""
    dst_words = dst.objects | dst.param_words
    if src.subject and src.subject <= dst_words:
        return True
    return len((src.param_words & dst.param_words) - GENERIC) >= 2


def _premise_shared(src: SchemaProfile, dst: SchemaProfile, gate: OutputField | None) -> set[str]:
    """The words that tie a premise to ``dst`` (for the evidence)."""
    words = (src.subject | src.param_words) & (dst.objects | dst.param_words)
    if gate is not None and dst.head in gate.words:
        words |= {dst.head}
    return set(words) - GATE_NAMES


def judge_pair(src: SchemaProfile, dst: SchemaProfile) -> Verdict | None:
    """The offline judge: is there an edge ``src -> dst``, of which kind, and why."""
    if src.name == dst.name:
        return None
    fed = feeds(src, dst)
    useful = [f for f in fed if f.required or f.score >= 0.85]
    if useful and (any(f.required for f in useful) or not dst.required):
        covered = {f.param for f in useful if f.required}
        full = bool(dst.required) and covered >= set(dst.required)
        mean = sum(f.score for f in useful) / len(useful)
        share = len(covered) / len(dst.required) if dst.required else 0.5
        score = mean if full else mean * (0.5 + 0.5 * share)
        evidence = "; ".join(f"{src.name}.{f.field} -> {dst.name}({f.param}) [{f.how}]" for f in useful)
        state = state_premise(src, dst)
        if state is not None and state[1]:  # the value flows and the state must hold too (add to cart -> remove from cart)
            evidence += f" | {REQUIRED_STATE} {state[0]}"
        return Verdict(
            kind="full_input" if full else "partial_input", score=round(min(score, 1.0), 3), evidence=evidence, feeds=tuple(useful)
        )
    gate = premise_signal(src, dst)
    if gate is not None:
        shared = sorted(_premise_shared(src, dst, gate))
        evidence = f"{src.name}.{gate.path} ({'/'.join(sorted(gate.types)) or 'value'}) decides whether {dst.name} can run; shared: {', '.join(shared[:4])}"
        return Verdict(kind="premise", score=0.6, evidence=evidence)
    state = state_premise(src, dst)
    if state is not None:
        reason, required = state
        return Verdict(kind="premise", score=0.7 if required else 0.6, evidence=f"{REQUIRED_STATE if required else STATE} {reason}")
    looked = look_premise(src, dst)
    if looked is not None:
        return Verdict(kind="premise", score=0.6, evidence=f"{LOOKED} {looked}")
    return None


# --------------------------------------------------------------------------- premises of state
#: evidence markers of premise edges about the world's state rather than a value: a REQUIRED one
#: means ``dst`` fails unless ``src`` (or another such source) ran before it in the conversation
STATE = "state premise:"
#: evidence marker of a premise of information: a look at the thing the next function acts on
LOOKED = "look premise:"
REQUIRED_STATE = "state premise (required):"
#: (doing, undoing): the second acts on what the first made (unblock needs a block)
UNDOES = {
    "add": ("remove", "delete"),
    "save": ("remove", "delete", "unsave"),
    "block": ("unblock",),
    "follow": ("unfollow",),
    "like": ("unlike",),
    "create": ("delete", "remove", "cancel"),
    "subscribe": ("unsubscribe",),
    "start": ("stop", "end"),
    "open": ("close",),
    "lock": ("unlock",),
    "mute": ("unmute",),
    "pin": ("unpin",),
    "archive": ("unarchive",),
    "enable": ("disable",),
    "login": ("logout",),
    "log": ("logout",),
    "connect": ("disconnect",),
    "mount": ("unmount",),
    "send": ("revoke", "recall", "unsend"),
    "share": ("unshare", "revoke"),
}
#: undoing, then doing again (unblock -> block, remove from the watchlist -> add): allowed, not required
REDOES = {undo: frozenset(d for d, undos in UNDOES.items() if undo in undos) for undo in {u for us in UNDOES.values() for u in us}}
#: actions after which the thing is gone: only a check or a listing can look at it then
DESTROYS = frozenset({"delete", "remove", "unsave"})
TOLERANT = frozenset({"check", "list", "is", "has", "search", "find", "view"})
#: actions that make a thing another function can then act on
MAKES = frozenset(
    {"create", "write", "save", "book", "place", "schedule", "send", "post", "upload", "download", "copy", "move", "compress"}
)
#: session and location premises: once logged in / in a directory, the other functions of the service run there
SESSION_VERBS = frozenset({"login", "log", "authenticate", "signin", "sign", "connect"})
LOCATION_VERBS = frozenset({"cd", "chdir"})
#: read-only looks: nothing they do needs a state another function made
LOOKS = frozenset(QUERY_VERBS | {"view", "show", "read", "track", "calculate", "compute", "estimate", "convert"})


def _verb(prof: SchemaProfile) -> str:
    tokens = name_tokens(prof.name)
    return tokens[0] if tokens else ""


def _container(prof: SchemaProfile) -> str:
    """What an add_*_to_<container> puts things in ('add_item_to_food_cart' -> 'cart'), or ''."""
    tokens = name_tokens(prof.name)
    if not tokens or tokens[0] not in ("add", "put") or not ({"to", "in", "into"} & set(tokens)):
        return ""
    return singular(tokens[-1])


def _outcome_only(prof: SchemaProfile) -> bool:
    """An action whose answer is only whether it worked (success / message): its effect is on the world."""
    fields = [o for o in prof.outputs if not o.echo]
    return bool(prof.outputs) and all(o.name in OUTCOME_FIELDS or o.name in ("message", "status") for o in fields)


def state_premise(src: SchemaProfile, dst: SchemaProfile) -> tuple[str, bool] | None:
    """A premise of state: ``src`` changes the world so that ``dst`` can run, or so that what
    ``dst`` reports depends on it. Returns (why, required) or None; ``required`` means ``dst``
    fails without it (the environments refuse: removing from an empty cart, unblocking a
    contact nobody blocked).

    1. *undoing*: ``dst`` undoes ``src`` on the same thing (save_place -> remove_saved_place,
       block_contact -> unblock_contact); the reverse (unblock -> block) is allowed, not required;
    2. *containers*: ``src`` adds to a container (add_item_to_food_cart -> cart) and ``dst``
       acts on that container, by name or description (place_food_order 'Order the cart');
    3. *sessions and location*: a login / authenticate or change-directory function comes before
       every other action of its service that is not itself a session or location step;
    4. *made, then acted on*: ``src`` makes a thing (write_file) that ``dst`` acts on by the key
       ``src`` took (read_file(file_path)): not required, the world may hold other such things;
    5. *effects looked at*: ``src`` only reports success, and ``dst`` looks at the same thing with
       no value ``src`` did not have (mark_message_as_read -> check_message_inbox).
    """
    vs, vd = _verb(src), _verb(dst)
    if not vs or not vd or src.name == dst.name:
        return None
    thing = _thing(src)
    same_thing = bool(thing) and (thing == _thing(dst) or thing in _things(dst))
    if same_thing and vd in UNDOES.get(vs, ()):
        return f"{dst.name} undoes what {src.name} did to the {thing}; it fails unless that happened first", True
    if same_thing and vd in REDOES.get(vs, ()):
        return f"{src.name} undid the {thing}'s state; {dst.name} can set it again", False
    box = _container(src)
    fills = box and f"{box}_id" not in {p.name for p in src.params} and not _container(dst) and vd not in LOOKS
    if fills and box in {singular(t) for t in name_tokens(dst.name)} | dst.description_words:
        return f"{dst.name} acts on the {box} that {src.name} fills; an empty {box} is refused", True
    if vs in SESSION_VERBS and vd not in SESSION_VERBS and vd not in LOOKS and thing in ("session", "account", "user", "in", ""):
        return f"{dst.name} runs in the session {src.name} opens", True
    if vs in LOCATION_VERBS and vd not in LOCATION_VERBS:
        return f"{dst.name} works in the directory {src.name} changes to", False
    own = {p.name for p in src.params if p.required}
    if vs in MAKES and vd not in MAKES and vd not in DESTROYS and same_thing and dst.required and set(dst.required) <= own:
        return f"{src.name} makes the {thing} that {dst.name} acts on ({', '.join(dst.required)})", False
    looks_after = vd in (TOLERANT if vs in DESTROYS else LOOKS)
    if vs not in LOOKS and looks_after and same_thing and set(dst.required) <= own and (dst.required or _outcome_only(src)):
        return f"what {dst.name} reports about the {thing} changes with {src.name}", False
    return None


def look_premise(src: SchemaProfile, dst: SchemaProfile) -> str | None:
    """A premise of information: ``src`` looks a thing up by its identifier and ``dst`` acts on
    the same kind of thing by that identifier (get_product_details -> add_product_to_cart,
    track_food_order -> rate_food_order; not get_thermostat_reading -> set_light_state): what
    the look shows is what the user decides on. The identifier is the user's own, so no value
    flows (an echo) and the edge is never nested; the look changes no state, so it is not
    required either."""
    vs, vd = _verb(src), _verb(dst)
    keys = _identifiers(dst)
    if vs in LOOKS and vs != "convert" and vd not in LOOKS and keys and keys <= _identifiers(src) and _things(src) & _things(dst):
        return f"{src.name} shows the {_thing(src) or 'thing'} that {dst.name} then acts on (the same {', '.join(sorted(keys))})"
    return None


def _identifiers(prof: SchemaProfile) -> set[str]:
    """The required parameters of a function that name a thing by its identifier (product_id)."""
    required = set(prof.required)
    return {p.name for p in prof.params if p.name in required and is_identifier_tokens(p.tokens, p.description)}


def _thing(prof: SchemaProfile) -> str:
    """What a function acts on: its head object, else the last word of its name that is no verb
    or particle ('save_place' -> 'place', though 'place' is also a verb)."""
    tokens = name_tokens(prof.name)
    if prof.head and tokens and prof.head != singular(tokens[0]):
        return prof.head
    rest = [t for t in tokens[1:] if t not in ("to", "from", "in", "on", "of", "by", "for")]
    return singular(rest[-1]) if rest else ""


def _things(prof: SchemaProfile) -> frozenset[str]:
    return prof.objects | {singular(t) for t in name_tokens(prof.name)[1:]}


def nested_reason(src: SchemaProfile, dst: SchemaProfile, verdict: Verdict) -> str | None:
    """Why ``dst`` is nested after ``src`` (the module docstring's rule), or None."""
    if verdict.kind == "premise":
        return None
    fields = {o.path: o for o in src.outputs}
    params = {p.name: p for p in dst.params}
    for feed in verdict.feeds:
        out, param = fields.get(feed.field), params.get(feed.param)
        if out is None or param is None:
            continue
        if is_identifier_tokens(name_tokens(out.name), out.description) or is_identifier_tokens(param.tokens, param.description):
            return f"{dst.name}({feed.param}) needs {out.path} of {src.name}, an identifier the user would not state"
        unit_valued = src.has_unit_field and ({"number", "integer"} & out.types or "unit" in out.name or "currency" in out.name)
        if dst.is_conversion and unit_valued:
            return f"{src.name} answers in its own unit; {dst.name}({feed.param}) converts {out.path}, which the user would not ask for by name"
    return None


def prefilter_keep(src: SchemaProfile, dst: SchemaProfile) -> bool:
    """The schema pre-filter: False when ``src`` is hopeless as a dependency of ``dst`` (no
    output shares an informative word and a compatible type with any parameter of ``dst``,
    and no premise signal). Deliberately looser than :func:`judge_pair`."""
    if src.name == dst.name:
        return False
    if dst.params:
        for out in src.feedable_outputs:
            out_tokens = {singular(t) for alias in out.aliases for t in name_tokens(alias) if t not in GENERIC}
            for param in dst.params:
                ptoks = {singular(t) for t in param.tokens if t not in GENERIC}
                shares = (
                    bool(out_tokens & (ptoks | param.words))
                    or any(a == param.name for a in out.aliases)
                    or any(param.name in _alias_set(a) for a in out.aliases)
                )
                if shares and (_types_compatible(param, out) > 0):
                    return True
    return premise_signal(src, dst) is not None or state_premise(src, dst) is not None or look_premise(src, dst) is not None


# --------------------------------------------------------------------------- candidates


def _rng(*key: Any) -> random.Random:
    return random.Random(int(stable_hash(list(key), 16), 16))


def sample_candidates(tools: Sequence[Tool], k: int, seed: int) -> dict[str, list[str]]:
    """Up to ``k`` candidate sources per function: same class first, then the rest of the
    category (see the module docstring for why), never the function itself. Seeded per
    function, so adding a tool does not reshuffle every other function's candidates more than
    its own category requires."""
    by_category: dict[str, list[Tool]] = {}
    for t in tools:
        by_category.setdefault(t.category, []).append(t)
    out: dict[str, list[str]] = {}
    for category, members in by_category.items():
        names = sorted(t.name for t in members)
        classes: dict[str, list[str]] = {}
        for t in sorted(members, key=lambda t: t.name):
            classes.setdefault(t.tool_class, []).append(t.name)
        for t in members:
            rng = _rng("candidates", seed, category, t.name)
            same = [n for n in classes[t.tool_class] if n != t.name]
            chosen = rng.sample(same, min(k, len(same)))
            rest = [n for n in names if n != t.name and n not in set(same)]
            chosen += rng.sample(rest, min(k - len(chosen), len(rest)))
            out[t.name] = chosen
    return out


# --------------------------------------------------------------------------- judging a category


@dataclass
class DependencyStats:
    """What judging a category cost and found (asset metadata; the benchmark's numbers)."""

    functions: int = 0
    candidate_pairs: int = 0
    prefiltered_pairs: int = 0
    judge_items: int = 0
    judge_rejects: int = 0
    nested_items: int = 0
    nested_rejects: int = 0
    edges_by_kind: Counter = field(default_factory=Counter)
    nested_edges: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "functions": self.functions,
            "candidate_pairs": self.candidate_pairs,
            "prefiltered_pairs": self.prefiltered_pairs,
            "judge_items": self.judge_items,
            "judge_rejects": self.judge_rejects,
            "nested_items": self.nested_items,
            "nested_rejects": self.nested_rejects,
            "edges_by_kind": dict(self.edges_by_kind),
            "nested_edges": self.nested_edges,
        }


def judge_items(
    tools: Sequence[Tool],
    candidates: Mapping[str, Sequence[str]],
    batch: int,
    prefilter: bool,
    profiles: ProfileCache | None = None,
    stats: DependencyStats | None = None,
) -> list:
    """The ``judge_dependencies`` items: one target with a batch of (pre-filtered) candidates."""

    profiles = profiles or ProfileCache()
    by_name = {t.name: t for t in tools}
    items = []
    for target in tools:
        names = [n for n in candidates.get(target.name, []) if n in by_name and n != target.name]
        if stats is not None:
            stats.candidate_pairs += len(names)
        if prefilter:
            dst = profiles(target)
            kept = [n for n in names if prefilter_keep(profiles(by_name[n]), dst)]
            if stats is not None:
                stats.prefiltered_pairs += len(names) - len(kept)
            names = kept
        for start in range(0, len(names), max(1, batch)):
            chunk = names[start : start + batch]
            items.append(JudgeItem(target=target, candidates=[by_name[n] for n in chunk]))
    return items


def judge_category(
    tools: Sequence[Tool], runner: Any, *, candidates: int = 30, batch: int = 30, prefilter: bool = True, seed: int = 0
) -> tuple[list[Edge], DependencyStats]:
    """Judge the dependencies of one category's functions: sample candidates, pre-filter,
    ask ``judge_dependencies`` (one call per target and batch), then ``check_nested`` (one call
    per target with input edges). ``runner`` is a :class:`magnet_lib.llm.TaskRunner`: offline
    it runs the schema judge, with a model it asks the model."""

    tools = sorted(tools, key=lambda t: t.name)
    stats = DependencyStats(functions=len(tools))
    judge_task, nested_task = JudgeDependenciesTask(), CheckNestedTask()
    profiles = judge_task.profiles
    nested_task.profiles = profiles
    items = judge_items(tools, sample_candidates(tools, candidates, seed), batch, prefilter, profiles, stats)
    stats.judge_items = len(items)
    by_name = {t.name: t for t in tools}
    found: dict[tuple[str, str], tuple[Any, str]] = {}
    for item, result in zip(items, runner.run(judge_task, items)):
        if not result.ok:
            stats.judge_rejects += 1
            continue
        for rel in result.value.related:
            found.setdefault((rel.name, item.target.name), (rel, result.generator))
    # check_nested: one item per target with its input edges (premises never are nested)
    per_target: dict[str, list] = {}
    for (src, dst), (rel, _) in sorted(found.items()):
        if rel.kind != "premise":
            per_target.setdefault(dst, []).append(NestedSource(tool=by_name[src], kind=rel.kind, evidence=rel.evidence))
    nested_items = [NestedItem(target=by_name[dst], sources=sources) for dst, sources in per_target.items()]
    stats.nested_items = len(nested_items)
    nested: dict[tuple[str, str], tuple[bool, str]] = {}
    for item, result in zip(nested_items, runner.run(nested_task, nested_items)):
        if not result.ok:
            stats.nested_rejects += 1
            continue
        for verdict in result.value.verdicts:
            nested[(verdict.source, item.target.name)] = (verdict.nested, verdict.reason)
    edges = []
    for (src, dst), (rel, judge) in sorted(found.items()):
        is_nested, reason = nested.get((src, dst), (False, ""))
        evidence = rel.evidence + (f" | nested: {reason}" if is_nested and reason else "")
        edges.append(
            Edge(
                src=src,
                dst=dst,
                category=by_name[src].category,
                kind=rel.kind,
                nested=is_nested,
                evidence=evidence,
                judge=judge or OFFLINE,
                score=rel.score,
            )
        )
        stats.edges_by_kind[rel.kind] += 1
        stats.nested_edges += is_nested
    return edges, stats


def offline_edges(tools: Iterable[Tool], candidates: Mapping[str, Sequence[str]], prefilter: bool) -> set[tuple[str, str]]:
    """Ordered pairs the offline judge accepts among the candidates (with or without the
    pre-filter): how the benchmark measures what the pre-filter loses."""
    tools = list(tools)
    profiles = ProfileCache()
    by_name = {t.name: t for t in tools}
    out = set()
    for target in tools:
        dst = profiles(target)
        for name in candidates.get(target.name, []):
            src = profiles(by_name[name])
            if prefilter and not prefilter_keep(src, dst):
                continue
            if judge_pair(src, dst) is not None:
                out.add((name, target.name))
    return out


# --------------------------------------------------------------------------- the LLM tasks: judge_dependencies, check_nested
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

    def response_schema(self, item: JudgeItem) -> dict[str, Any]:
        """``{"<target>": [{"name": <a candidate>, "kind": ..., "evidence": ...}]}``."""
        entry = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": sorted({c.name for c in item.candidates})},
                "kind": {"type": "string", "enum": list(KIND_SCORE)},
                "evidence": {"type": "string", "minLength": 1},
            },
            "required": ["name", "kind", "evidence"],
        }
        target = item.target.name
        return {"type": "object", "properties": {target: {"type": "array", "items": entry}}, "required": [target]}

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
                {
                    "name": s.tool.name,
                    "description": s.tool.description,
                    "outputs": outputs_text(s.tool),
                    "kind": s.kind,
                    "evidence": s.evidence,
                }
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
                raise ParseError(f'\'{name}\': expected {{"answer": "yes" or "no", "reason": "..."}}')
            answer = str(entry.get("answer", "")).strip().lower()
            if answer not in _YES:
                raise ParseError(f"'{name}': answer must be yes or no, got {entry.get('answer')!r}")
            reason = str(entry.get("reason", "")).strip()
            if not reason:
                raise ParseError(f"'{name}': give a reason")
            verdicts.append(NestedVerdict(source=name, nested=_YES[answer], reason=reason))
        return NestedAnswer(target=item.target.name, verdicts=verdicts)

    def response_schema(self, item: NestedItem) -> dict[str, Any]:
        """``{"<source>": {"answer": "yes" | "no", "reason": ...}}`` for every source."""
        verdict = {
            "type": "object",
            "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}, "reason": {"type": "string"}},
            "required": ["answer", "reason"],
        }
        names = [s.tool.name for s in item.sources]
        return {"type": "object", "properties": {n: verdict for n in names}, "required": names}

    def answer_text(self, output: NestedAnswer) -> str:
        return json.dumps(
            {v.source: {"answer": "yes" if v.nested else "no", "reason": v.reason} for v in output.verdicts}, ensure_ascii=False
        )

    def offline(self, item: NestedItem) -> NestedAnswer:
        dst = self.profiles(item.target)
        verdicts = []
        for source in item.sources:
            src = self.profiles(source.tool)
            verdict = judge_pair(src, dst)
            reason = nested_reason(src, dst, verdict) if verdict is not None else None
            verdicts.append(
                NestedVerdict(
                    source=source.tool.name,
                    nested=reason is not None,
                    reason=reason or f"the values {item.target.name} needs are ones a user can state; they would name it",
                )
            )
        return NestedAnswer(target=item.target.name, verdicts=verdicts)
