"""Random walks over random graphs (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from magnet_lib.graph.walk import initial_fsps, nested_sources, walk_violations

NAMES = [f"f{i}" for i in range(12)]


@st.composite
def graphs(draw):
    nodes = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=12, unique=True))
    adjacency = {}
    for node in nodes:
        outs = draw(st.lists(st.sampled_from(nodes), max_size=4, unique=True))
        adjacency[node] = [(dst, draw(st.booleans())) for dst in outs if dst != node]
    return adjacency


@settings(max_examples=150, deadline=None)
@given(graphs(), st.integers(1, 9), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10**6))
def test_walks_follow_edges_and_the_rules(adjacency, length, per_node, min_turns, seed):
    fsps = initial_fsps("cat", adjacency, walk_length=length, walks_per_node=per_node, min_turns=min_turns, seed=seed)
    assert walk_violations(fsps, adjacency) == []
    edges = {(a, b) for a, out in adjacency.items() for b, _ in out}
    for fsp in fsps:
        assert all((a, b) in edges for a, b in zip(fsp.path, fsp.path[1:]))
        assert min_turns <= len(fsp.path) <= length
        assert fsp.path[0] == fsp.start and fsp.category == "cat"
        # a walk shorter than the limit stopped where no out-neighbour can run: a dead end, or
        # every neighbour needs a value only a function the walk has not called gives (an
        # action called before: not called since its last call; these names are no look-ups)
        if len(fsp.path) < length:
            needs = nested_sources(adjacency)
            outs = {b for b, _ in adjacency.get(fsp.path[-1], [])} - {fsp.path[-1]}

            def usable(n: str, path: list[str]) -> set[str]:
                last = max((i for i, f in enumerate(path) if f == n), default=None)
                return set(path) if last is None else set(path[last + 1 :])

            assert all(n in needs and not set(needs[n]) & usable(n, fsp.path) for n in outs)
    assert len({tuple(f.path) for f in fsps}) == len(fsps)  # deduplicated
    assert len({f.fsp_id for f in fsps}) == len(fsps)
    again = initial_fsps("cat", adjacency, walk_length=length, walks_per_node=per_node, min_turns=min_turns, seed=seed)
    assert again == fsps  # same seed, same walks


def test_walk_from_every_node_and_dead_ends():
    adjacency = {"a": [("b", False)], "b": [("c", True)], "c": [], "d": [("a", False)]}
    fsps = initial_fsps("cat", adjacency, walk_length=7, min_turns=2, seed=0)
    assert sorted(f.path for f in fsps) == [["a", "b", "c"], ["b", "c"], ["d", "a", "b", "c"]]
    assert walk_violations(fsps, {"a": [("b", False)]})  # the check notices a step that is not an edge


def test_a_walk_does_not_go_back_and_forth_between_doing_and_undoing():
    """Read in the default run: add_stock_to_watchlist, remove, add, remove, ... (the only
    neighbours of each other): the walk ends instead of going straight back to an undone step."""
    import random

    from magnet_lib.graph.walk import random_walk

    adjacency = {"add_stock_to_watchlist": ["remove_stock_from_watchlist"], "remove_stock_from_watchlist": ["add_stock_to_watchlist"]}
    for seed in range(5):
        path = random_walk(adjacency, "add_stock_to_watchlist", 7, random.Random(seed))
        assert path == ["add_stock_to_watchlist", "remove_stock_from_watchlist"]
    looks = {"get_order": ["list_orders"], "list_orders": ["get_order"]}  # looking again is no undoing: the walk goes on
    assert len(random_walk(looks, "get_order", 5, random.Random(0))) == 5


def test_a_walk_led_to_an_undoing_does_not_go_back_to_the_lead():
    """Read in the default run: remove_stock_from_watchlist needs a symbol on the watchlist, so
    its walk is led by add_stock_to_watchlist; the walk then went straight back to adding it."""
    import random

    from magnet_lib.graph.walk import random_walk

    adjacency = {"add_stock_to_watchlist": ["remove_stock_from_watchlist"], "remove_stock_from_watchlist": ["add_stock_to_watchlist"]}
    path = random_walk(adjacency, "remove_stock_from_watchlist", 6, random.Random(0), before=["add_stock_to_watchlist"])
    assert path == ["remove_stock_from_watchlist"]
