"""Node operations on an initial FSP (paper section 3.4), in the paper's order:

1. :func:`merge_turns` (Merge): each pair of consecutive turns is merged with probability
   ``merge_p`` (an explicit multi-intent query), never above ``max_calls_per_turn`` functions.
2. :func:`insert_nested_calls` (Insert): for each turn, its last function ``f``; when ``f`` has
   nested neighbours, one of them is appended to the same turn with ``insert_short_p``
   (an implicit call, short dependency: op ``insert_short``) or inserted as its own turn after
   a random later turn with ``insert_long_p`` (long dependency: op ``insert_long``, ``target``
   = ``f``, the earlier function whose output it needs). The paper gives no probabilities.
3. :func:`split_turn` (Split): an empty turn labelled ``miss_func`` or ``miss_params`` is put
   before a random call turn (= after the turn before it). It asks for what that following
   turn does, but the function is withheld (``miss_func``) or a required value is left out
   (``miss_params``); ``target`` names the function concerned. A turn after which nothing
   follows cannot be split, so the empty turn goes before turn 1.. n-1 (before turn 0 only
   when the FSP has a single turn). ``miss_params`` needs a target with a required parameter;
   without one the split falls back to ``miss_func``.

Both the FSP before Split (variant ``no_split``) and the split one (variant = its label) are
kept. Every turn records the operation that last changed it. Each operation has its own
random generator derived from (seed, fsp id, operation), so changing one probability does
not reshuffle the other operations.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

from magnet_lib.graph.dependency import LOOKS, MAKES, UNDOES
from magnet_lib.models import FSP, AugmentedFSP, FSPTurn, stable_hash
from magnet_lib.settings import GraphSettings
from magnet_lib.translation.forth_translation import schema_leaves
from magnet_lib.vocabulary import name_tokens, singular


def op_rng(seed: int, fsp_id: str, operation: str) -> random.Random:
    return random.Random(int(stable_hash(["node_op", seed, fsp_id, operation]), 16))


def initial_turns(path: Sequence[str]) -> list[FSPTurn]:
    """One function per turn, as the walk made them."""
    return [FSPTurn(functions=[name], op="walk") for name in path]


def undoes(first: str, then: str) -> bool:
    """Whether ``then`` undoes what ``first`` did (create -> delete, book -> cancel, block ->
    unblock): asked for in the same breath, the pair means nothing; a later turn may ask it."""
    a, b = name_tokens(first)[:1], name_tokens(then)[:1]
    if not a or not b:
        return False
    if b[0] in _CANCELS and a[0] in _objects(then):  # transfer_between_accounts -> cancel_scheduled_transfer
        return True
    return b[0] in UNDOES.get(a[0], ()) or (a[0] in MAKES and b[0] in _CANCELS)


#: verbs that take back an action (what the action's own verb names: cancel the transfer)
_CANCELS = ("cancel", "delete", "remove", "revoke")


#: verbs that change what was just made: asked for with the making, the pair means nothing
#: (book a flight and change it, create an event and update it)
MODIFIES = frozenset({"change", "reschedule", "update", "modify", "edit", "rename"})


def pointless_together(first: str, then: str) -> bool:
    """Whether ``then`` in the same breath as ``first`` makes the pair mean nothing: it undoes
    it (create -> delete), redoes what it undid (remove from the watchlist -> add again), or
    changes what it just made (book -> change the booking)."""
    if undoes(first, then):
        return True
    a, b = name_tokens(first)[:1], name_tokens(then)[:1]
    if not a or not b:
        return False
    redo = a[0] in UNDOES.get(b[0], ()) and bool(_objects(first) & _objects(then))  # the same thing, done again
    return redo or (a[0] in MAKES and b[0] in MODIFIES)


def _objects(name: str) -> set[str]:
    return {singular(t) for t in name_tokens(name)[1:] if t not in ("to", "from", "in", "on", "of", "by", "for", "a", "the")}


def merge_turns(turns: Sequence[FSPTurn], rng: random.Random, p: float = 0.3, max_calls: int = 3) -> list[FSPTurn]:
    """Merge: each consecutive pair merged with probability ``p`` (never above ``max_calls``,
    never a turn that undoes, redoes or changes what the one before did)."""
    out: list[FSPTurn] = []
    for turn in turns:
        draw = rng.random()  # always drawn, so a full turn does not shift later decisions
        undoing = out and any(pointless_together(f, g) for f in out[-1].functions for g in turn.functions)
        if out and draw < p and not undoing and len(out[-1].functions) + len(turn.functions) <= max_calls:
            out[-1] = FSPTurn(functions=out[-1].functions + turn.functions, op="merge")
        else:
            out.append(turn.model_copy())
    return out


def insert_nested_calls(
    turns: Sequence[FSPTurn],
    nested: Mapping[str, Sequence[str]],
    rng: random.Random,
    short_p: float = 0.5,
    long_p: float = 0.2,
    max_calls: int = 3,
    requires: Mapping[str, Sequence[str]] | None = None,
) -> list[FSPTurn]:
    """Insert: a nested neighbour of each turn's last function, in the same turn (short) or as
    its own turn after a random later turn (long). A neighbour with a required premise of
    state (``requires``: unblock_contact <- block_contact) is inserted only after one of its
    premises has been called, else the world would refuse it."""
    if short_p < 0 or long_p < 0 or short_p + long_p > 1:
        raise ValueError(f"insert probabilities must be >= 0 and sum to at most 1, got short {short_p} + long {long_p}")
    body = [t.model_copy(deep=True) for t in turns]
    after: dict[int, list[FSPTurn]] = {}
    for i, turn in enumerate(body):
        if not turn.functions:
            continue
        last = turn.functions[-1]
        # not a function this turn or the next one already calls: the walk has that call anyway
        upcoming = set(body[i + 1].functions) if i + 1 < len(body) else set()
        called = {f for t in body[: i + 1] for f in t.functions}
        options = sorted(
            f
            for f in set(nested.get(last, ())) - set(turn.functions) - upcoming - {last}
            if not (requires or {}).get(f) or called & set((requires or {})[f])
        )
        if not options:
            continue
        # a look-up is what Insert is for (the user states the goal, not the step); an action
        # (delete, cancel) must be asked for by name, so it is inserted only when nothing else is
        looks = [f for f in options if name_tokens(f)[:1] and name_tokens(f)[0] in LOOKS]
        draw, choice = rng.random(), rng.choice(looks or options)
        if draw < short_p:
            if any(pointless_together(f, choice) for f in turn.functions):  # not in the same turn: another neighbour, else none
                choice = next((f for f in looks or options if not any(pointless_together(g, f) for g in turn.functions)), None)
            if choice is not None and len(turn.functions) < max_calls:
                body[i] = FSPTurn(functions=turn.functions + [choice], op="insert_short")
        elif draw < short_p + long_p:
            later = list(range(i + 1, len(body)))
            if later:
                j = rng.choice(later)
                after.setdefault(j, []).append(FSPTurn(functions=[choice], op="insert_long", target=last))
    out: list[FSPTurn] = []
    for j, turn in enumerate(body):
        out.append(turn)
        out.extend(after.get(j, []))
    return out


def split_turn(
    turns: Sequence[FSPTurn],
    rng: random.Random,
    miss_func_p: float = 0.5,
    required: Mapping[str, Sequence[str]] | None = None,
    outputs: Mapping[str, Collection[str]] | None = None,
) -> list[FSPTurn]:
    """Split: an empty ``miss_func`` / ``miss_params`` turn before a random call turn.

    The target must make the split answerable: a ``miss_func`` target is not called before
    the split (else the function was already offered), and a ``miss_params`` target has a
    required parameter that no earlier function's output provides (``outputs``: response
    field names per function), so the user really is the only source of the value. When the
    drawn label has no such target, the other label is tried before falling back."""
    calls = [i for i, t in enumerate(turns) if t.functions]
    if not calls:
        raise ValueError("cannot split an FSP without a call turn")
    positions = [i for i in calls if i > 0] or calls

    def func_targets(k: int) -> list[str]:
        before = {f for t in turns[:k] for f in t.functions}
        return [f for f in turns[k].functions if f not in before]

    def param_targets(k: int) -> list[str]:
        found = []
        for j, f in enumerate(turns[k].functions):
            earlier = [g for t in turns[:k] for g in t.functions] + list(turns[k].functions[:j])
            provided = {name for g in earlier for name in (outputs or {}).get(g, ())}
            needs = required.get(f, []) if required is not None else ["?"]
            if any(p not in provided for p in needs):
                found.append(f)
        return found

    first = "miss_func" if rng.random() < miss_func_p else "miss_params"
    finders = {"miss_func": func_targets, "miss_params": param_targets}
    for label in (first, "miss_params" if first == "miss_func" else "miss_func"):
        options = [(k, f) for k in positions for f in finders[label](k)]
        if options:
            k, target = rng.choice(options)
            break
    else:  # nothing fits: keep the paper's plain draw (translation will reject it with a reason)
        k = rng.choice(positions)
        target = rng.choice(turns[k].functions)
        label = first if required is None or required.get(target) else "miss_func"
    empty = FSPTurn(functions=[], op="split", label=label, target=target)
    return [t.model_copy(deep=True) for t in turns[:k]] + [empty] + [t.model_copy(deep=True) for t in turns[k:]]


def augmented_id(parent_fsp_id: str, variant: str, seed: int) -> str:
    return stable_hash(["augmented", parent_fsp_id, variant, seed])


def augment_fsp(
    fsp: FSP,
    nested: Mapping[str, Sequence[str]],
    settings: GraphSettings | None = None,
    required: Mapping[str, Sequence[str]] | None = None,
    seed: int | None = None,
    outputs: Mapping[str, Collection[str]] | None = None,
    requires: Mapping[str, Sequence[str]] | None = None,
) -> list[AugmentedFSP]:
    """Merge -> Insert, then Split: ``[no_split, <split variant>]`` for one initial FSP."""
    s = settings or GraphSettings()
    seed = fsp.seed if seed is None else seed
    turns = merge_turns(initial_turns(fsp.path), op_rng(seed, fsp.fsp_id, "merge"), s.merge_p, s.max_calls_per_turn)
    turns = insert_nested_calls(
        turns, nested, op_rng(seed, fsp.fsp_id, "insert"), s.insert_short_p, s.insert_long_p, s.max_calls_per_turn, requires
    )
    split = split_turn(turns, op_rng(seed, fsp.fsp_id, "split"), s.split_miss_func_p, required, outputs)
    variant = next(t.label for t in split if t.op == "split")
    return [
        AugmentedFSP(
            fsp_id=augmented_id(fsp.fsp_id, "no_split", seed),
            parent_fsp_id=fsp.fsp_id,
            category=fsp.category,
            variant="no_split",
            turns=turns,
            seed=seed,
        ),
        AugmentedFSP(
            fsp_id=augmented_id(fsp.fsp_id, variant, seed),
            parent_fsp_id=fsp.fsp_id,
            category=fsp.category,
            variant=variant,
            turns=split,
            seed=seed,
        ),
    ]


def nested_neighbours(adjacency: Mapping[str, Sequence[tuple[str, bool]]]) -> dict[str, list[str]]:
    """``{src: [dst, ...]}`` of the nested edges of an adjacency from :func:`graph_db.adjacency`."""
    return {src: sorted(dst for dst, is_nested in out if is_nested) for src, out in adjacency.items()}


def augment_fsps(
    fsps: Iterable[FSP],
    nested: Mapping[str, Sequence[str]],
    settings: GraphSettings | None = None,
    required: Mapping[str, Sequence[str]] | None = None,
    seed: int | None = None,
    outputs: Mapping[str, Collection[str]] | None = None,
    requires: Mapping[str, Sequence[str]] | None = None,
) -> list[AugmentedFSP]:
    """Every FSP's no_split and split variants."""
    return [a for fsp in fsps for a in augment_fsp(fsp, nested, settings, required, seed, outputs, requires)]


# --------------------------------------------------------------------------- checks and statistics


def turn_limit_violations(augmented: Iterable[AugmentedFSP], max_calls: int = 3) -> list[str]:
    return [
        f"{a.fsp_id} turn {i}: {len(t.functions)} functions > {max_calls}"
        for a in augmented
        for i, t in enumerate(a.turns)
        if len(t.functions) > max_calls
    ]


def insert_violations(augmented: Iterable[AugmentedFSP], nested: Mapping[str, Sequence[str]]) -> list[str]:
    """Inserted functions that are not a nested neighbour of the function they follow."""
    problems = []
    for a in augmented:
        for i, t in enumerate(a.turns):
            if t.op == "insert_short" and (len(t.functions) < 2 or t.functions[-1] not in nested.get(t.functions[-2], ())):
                problems.append(f"{a.fsp_id} turn {i}: {t.functions} is not <f, nested neighbour of f>")
            if t.op == "insert_long" and (len(t.functions) != 1 or t.functions[0] not in nested.get(t.target or "", ())):
                problems.append(f"{a.fsp_id} turn {i}: {t.functions} is not a nested neighbour of {t.target}")
    return problems


def operation_counts(augmented: Iterable[AugmentedFSP]) -> dict[str, int]:
    """Turns per operation and per split label, over a set of augmented FSPs."""
    counts: Counter = Counter()
    for a in augmented:
        for t in a.turns:
            counts[t.op] += 1
            if t.op == "split":
                counts[t.label] += 1
    return dict(sorted(counts.items()))


def augment_category(
    fsps: Iterable[FSP],
    adjacency: Mapping[str, Sequence[tuple[str, bool]]],
    functions: Iterable[Mapping],
    settings: GraphSettings,
    seed: int,
    requires: Mapping[str, Sequence[str]] | None = None,
) -> list[AugmentedFSP]:
    """The augmented FSPs of one category, from its walks, its stored adjacency and its
    Function nodes (``parameters`` / ``response`` as dicts): what the ``augmented_fsps`` asset
    makes. The required parameters and the output field names (with their singulars) of every
    function decide the miss_params targets."""
    functions = list(functions)
    required = {f["name"]: f["parameters"].get("required", []) for f in functions}
    outputs = {f["name"]: {n for name, _ in schema_leaves(f["response"]) for n in (name, singular(name))} for f in functions}
    return augment_fsps(fsps, nested_neighbours(adjacency), settings, required, seed, outputs, requires)
