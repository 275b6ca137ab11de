"""Augmented FSPs for translation tests and benchmarks, made with the graph stage's library
(offline schema judge -> random walks -> Merge/Insert/Split) without Dagster or Kuzu."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from magnet_lib.graph.dependency import judge_category
from magnet_lib.graph.node_operations import augment_fsps
from magnet_lib.graph.walk import initial_fsps, required_states
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import AugmentedFSP, Tool
from magnet_lib.settings import MagnetSettings
from magnet_lib.translation.forth_translation import schema_leaves


def augmented_for(
    tools: Sequence[Tool], settings: MagnetSettings, runner: TaskRunner | None = None, walk_counts: Counter | None = None
) -> list[AugmentedFSP]:
    """The augmented FSPs of one category's tools, as the graph assets would make them
    (``walk_counts``: the walks drawn, distinct and repeated, see :func:`initial_fsps`)."""
    g = settings.graph
    runner = runner or TaskRunner(settings.llm)
    category = tools[0].category
    edges, _ = judge_category(tools, runner, candidates=g.candidates, batch=g.judge_batch, prefilter=g.prefilter, seed=settings.seed)
    adjacency: dict[str, list[tuple[str, bool]]] = {t.name: [] for t in tools}
    for e in edges:
        adjacency[e.src].append((e.dst, e.nested))
    walks = initial_fsps(
        category,
        adjacency,
        walk_length=g.walk_length,
        walks_per_node=g.walks_per_node,
        min_turns=g.min_turns,
        seed=settings.seed,
        requires=required_states(e.model_dump() for e in edges),
        tries=g.walk_tries,
        counts=walk_counts,
    )
    nested = {src: sorted(d for d, n in out if n) for src, out in adjacency.items()}
    required = {t.name: t.required for t in tools}
    # as the augmented_fsps asset does: what each function's output promises (miss_params targets)
    outputs = {t.name: {n for name, _ in schema_leaves(t.response) for n in (name, name.rstrip("s"))} for t in tools}
    return augment_fsps(walks, nested, g, required, settings.seed, outputs, required_states(e.model_dump() for e in edges))


def navigation_fsps() -> list[AugmentedFSP]:
    """Hand-built augmented FSPs on the navigation environment: nested calls, a long
    dependency, a miss_func and a miss_params split."""
    from magnet_lib.models import FSPTurn

    def fsp(fsp_id: str, variant: str, seed: int, turns: list[FSPTurn]) -> AugmentedFSP:
        return AugmentedFSP(fsp_id=fsp_id, parent_fsp_id=f"walk-{fsp_id}", category="navigation", variant=variant, seed=seed, turns=turns)

    return [
        fsp("nested", "no_split", 1, [
            FSPTurn(functions=["search_places"], op="walk"),
            FSPTurn(functions=["get_distance", "convert_distance"], op="insert_short"),
            FSPTurn(functions=["plan_route"], op="insert_long"),
            FSPTurn(functions=["start_navigation", "get_eta"], op="merge"),
        ]),
        fsp("missfunc", "miss_func", 2, [
            FSPTurn(functions=["search_places"], op="walk"),
            FSPTurn(functions=[], op="split", label="miss_func", target="save_place"),
            FSPTurn(functions=["save_place"], op="walk"),
            FSPTurn(functions=["list_saved_places"], op="walk"),
        ]),
        fsp("missparams", "miss_params", 3, [
            FSPTurn(functions=["geocode_address"], op="walk"),
            FSPTurn(functions=[], op="split", label="miss_params", target="search_places"),
            FSPTurn(functions=["search_places"], op="walk"),
        ]),
    ]  # fmt: skip
