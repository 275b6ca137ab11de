"""Initial function signature paths: random walks over the local dependency graph (paper 3.4).

From every node of a category, ``walks_per_node`` walks are taken; each step moves to an
out-neighbour chosen uniformly. A walk holds at most ``walk_length`` functions (S = 7: one
function per turn), ends early at a dead end (a function with no out-edge), and is dropped
when it has fewer than ``min_turns`` functions. Identical paths are kept once: a walk that
repeats a path already taken is dropped and another is drawn from the same start (at most
``walk_tries`` draws per wanted walk), so more walks per node add only distinct paths. A function may
appear again later in a walk (the paper does not forbid it; a user may check a balance twice),
but never twice in a row, since the graph has no self-loops.

A walk starts where a user can state the inputs: from a node that needs a value only another
function's output gives (a nested in-edge, e.g. ``cancel_scheduled_transfer`` after
``schedule_transfer``) or a state only another function makes (a required premise of state,
e.g. ``unblock_contact`` after ``block_contact``), the walk first takes such a predecessor (up
to three back), so every node is still reached and turn 0 is a request a user could make. For
the same reason a step goes only to a function whose needs are met by the path so far.

Every walk has its own random generator seeded from (seed, category, start, walk index), so a
walk does not change when another node is added elsewhere, and the ``fsp_id`` is a stable
hash of (category, path, seed).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from magnet_lib.graph.dependency import LOOKS, REQUIRED_STATE, UNDOES
from magnet_lib.models import FSP, stable_hash
from magnet_lib.vocabulary import name_tokens

Adjacency = Mapping[str, Sequence[tuple[str, bool]] | Sequence[str]]


def _neighbours(adjacency: Adjacency, node: str) -> list[str]:
    out = adjacency.get(node, ())
    names = [n[0] if isinstance(n, tuple) else n for n in out]
    return sorted(set(names) - {node})


def required_states(edges: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """dst -> the sources of its required premises of state, from stored edges (dicts or
    :class:`~magnet_lib.models.Edge` dumps with src, dst and evidence)."""
    out: dict[str, set[str]] = {}
    for e in edges:
        if REQUIRED_STATE in str(e.get("evidence") or ""):
            out.setdefault(e["dst"], set()).add(e["src"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def walk_rng(seed: int, category: str, start: str, index: int) -> random.Random:
    return random.Random(int(stable_hash(["walk", seed, category, start, index]), 16))


def _ready(node: str, seen: set[str], needs: Sequence[Mapping[str, Sequence[str]]]) -> bool:
    """Whether ``node`` can run after ``seen``: for each map of needs, one of what it needs ran."""
    return all(node not in m or bool(seen & set(m[node])) for m in needs)


def _since(node: str, path: Sequence[str], before: Sequence[str]) -> set[str]:
    """What ran that an action ``node`` can still use: everything (``before`` too) when it has
    not run yet, else only what ran after its last call. An action uses up what it needed (a
    cancelled order is no order to cancel again), so doing it again needs a new one first; a
    look-up may look again at the same thing."""
    if node not in path or name_tokens(node)[:1] and name_tokens(node)[0] in LOOKS:
        return set(before) | set(path)
    last = len(path) - 1 - path[::-1].index(node)
    return set(path[last + 1 :])


def random_walk(
    adjacency: Adjacency,
    start: str,
    length: int,
    rng: random.Random,
    needs: Sequence[Mapping[str, Sequence[str]]] = (),
    before: Sequence[str] = (),
) -> list[str]:
    """One walk of at most ``length`` functions from ``start``, uniform over the out-edges
    whose target can run at that point: a function in one of the maps of ``needs`` (it needs
    a value only another function's output gives, or a state another function makes) is a
    step only when one of the functions it needs is already on the path (``before``, the
    lead, counts too), and for an action called before, after its last call (cancel, place
    another order, cancel again)."""
    path = [start]
    while len(path) < length:
        options = [n for n in _neighbours(adjacency, path[-1]) if _ready(n, _since(n, path, before), needs)]
        if not options:
            break  # dead end
        came = [*before, *path]  # the lead counts: a walk from remove_stock led by add_stock does not add it again
        onward = [n for n in options if len(came) < 2 or n != came[-2]]  # not straight back (block, unblock, block) when it can go on
        if not onward and _undoing_pair(came[-2], came[-1]):
            break  # back and forth between doing and undoing (add, remove, add, remove): a dead end, not a conversation
        path.append(rng.choice(onward or options))
    return path


def _undoing_pair(a: str, b: str) -> bool:
    """Whether one of two functions undoes the other (add / remove, block / unblock)."""
    ta, tb = name_tokens(a)[:1], name_tokens(b)[:1]
    return bool(ta and tb) and (tb[0] in UNDOES.get(ta[0], ()) or ta[0] in UNDOES.get(tb[0], ()))


def nested_sources(adjacency: Adjacency) -> dict[str, list[str]]:
    """dst -> the functions whose output dst needs (its nested in-edges): a user cannot start there."""
    out: dict[str, set[str]] = {}
    for src, edges in adjacency.items():
        for e in edges:
            if isinstance(e, tuple) and e[1] and e[0] != src:
                out.setdefault(e[0], set()).add(src)
    return {k: sorted(v) for k, v in out.items()}


def user_start(
    start: str,
    needs: Mapping[str, Sequence[str]],
    rng: random.Random,
    steps: int = 3,
    state: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The shortest chain to ``start`` from a function a user can call with what they know
    and the world as it is (one with no nested in-edge and no required premise of state): a
    random one of the shortest, ``start`` alone when none is within ``steps``. A function
    with a required state is preceded by what makes that state (which usually gives its
    value too: add_item_to_food_cart -> remove_item_from_food_cart), else by what gives the
    value it needs."""
    state = state or {}
    frontier = [[start]]
    for _ in range(steps):
        grown = []
        for chain in frontier:
            for pred in state.get(chain[0]) or needs.get(chain[0], ()):
                if pred not in chain:
                    grown.append([pred, *chain])
        done = [c for c in grown if c[0] not in needs and c[0] not in state]
        if done:
            return done[rng.randrange(len(done))]
        frontier = grown
    return [start]


def fsp_id(category: str, path: Sequence[str], seed: int) -> str:
    return stable_hash(["fsp", category, list(path), seed])


def initial_fsps(
    category: str,
    adjacency: Adjacency,
    *,
    nodes: Iterable[str] | None = None,
    walk_length: int = 7,
    walks_per_node: int = 1,
    min_turns: int = 2,
    seed: int = 0,
    requires: Mapping[str, Sequence[str]] | None = None,
    tries: int = 1,
    counts: Counter | None = None,
) -> list[FSP]:
    """The initial FSPs of a category: walks from every node (``nodes``, default the keys of
    ``adjacency``), deduplicated, in a stable order. ``requires`` maps a function to the
    functions of which one must have run for the world to allow it (required premises of
    state, e.g. remove_item_from_food_cart <- add_item_to_food_cart): like a nested in-edge,
    such a function is only stepped to after one of them, and a walk from it starts there.

    From each start up to ``walks_per_node * tries`` walks are drawn until ``walks_per_node``
    of them are paths not seen before (from this start or another): a repeated path is
    dropped, and a start with fewer distinct paths than asked for gives what it has.
    ``counts`` (if given) receives ``drawn``, ``distinct``, ``repeated`` and ``short``
    (dropped under ``min_turns``), so the share of distinct walks can be reported."""
    starts = sorted(set(nodes) if nodes is not None else set(adjacency))
    needs = nested_sources(adjacency)
    state = {d: [s for s in srcs if s != d and d in _neighbours(adjacency, s)] for d, srcs in (requires or {}).items()}
    state = {d: srcs for d, srcs in state.items() if srcs}
    adjacency = {node: _neighbours(adjacency, node) for node in set(adjacency) | set(starts)}  # sorted once
    counts = Counter() if counts is None else counts
    seen: set[tuple[str, ...]] = set()
    out: list[FSP] = []
    for start in starts:
        found = 0
        for index in range(walks_per_node * max(1, tries)):
            if found == walks_per_node:
                break
            rng = walk_rng(seed, category, start, index)
            lead = user_start(start, needs, rng, walk_length - 2, state)[:-1] if start in needs or start in state else []
            path = lead + random_walk(adjacency, start, walk_length - len(lead), rng, (needs, state), lead)
            key = tuple(path)
            counts["drawn"] += 1
            if len(path) < min_turns:
                counts["short"] += 1
                continue
            if key in seen:
                counts["repeated"] += 1
                continue
            seen.add(key)
            found += 1
            counts["distinct"] += 1
            out.append(FSP(fsp_id=fsp_id(category, path, seed), category=category, path=path, start=path[0], seed=seed))
    return out


def walk_violations(fsps: Iterable[FSP], adjacency: Adjacency) -> list[str]:
    """Steps of walks that are not edges of the graph (empty when every step is an edge)."""
    problems = []
    for fsp in fsps:
        for a, b in zip(fsp.path, fsp.path[1:]):
            if b not in _neighbours(adjacency, a):
                problems.append(f"{fsp.fsp_id}: {a} -> {b} is not an edge of the graph")
    return problems
