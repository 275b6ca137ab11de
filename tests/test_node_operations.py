"""Merge -> Insert -> Split on random walks over random graphs (hypothesis)."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magnet_lib.graph.node_operations import (
    augment_fsp,
    initial_turns,
    insert_nested_calls,
    insert_violations,
    merge_turns,
    nested_neighbours,
    split_turn,
    turn_limit_violations,
)
from magnet_lib.graph.walk import initial_fsps
from magnet_lib.models import FSP
from magnet_lib.settings import GraphSettings

NAMES = [f"f{i}" for i in range(10)]


@st.composite
def graphs(draw):
    adjacency = {}
    for node in NAMES:
        outs = draw(st.lists(st.sampled_from(NAMES), max_size=4, unique=True))
        adjacency[node] = [(dst, draw(st.booleans())) for dst in outs if dst != node]
    return adjacency


probabilities = st.floats(0, 1)


@settings(max_examples=120, deadline=None)
@given(graphs(), st.integers(0, 10**6), probabilities, probabilities, probabilities, st.integers(1, 4))
def test_operations_respect_the_rules(adjacency, seed, merge_p, short_share, miss_func_p, max_calls):
    short_p, long_p = short_share * 0.8, (1 - short_share) * 0.8
    gs = GraphSettings(
        merge_p=merge_p, insert_short_p=short_p, insert_long_p=long_p, split_miss_func_p=miss_func_p, max_calls_per_turn=max_calls
    )
    nested = nested_neighbours(adjacency)
    required = {n: (["x"] if int(n[1:]) % 2 else []) for n in NAMES}
    for fsp in initial_fsps("cat", adjacency, walk_length=7, seed=seed):
        no_split, split = augment_fsp(fsp, nested, gs, required)
        assert no_split.variant == "no_split" and split.variant in ("miss_func", "miss_params")
        assert no_split.parent_fsp_id == split.parent_fsp_id == fsp.fsp_id and no_split.fsp_id != split.fsp_id
        # at most max_calls functions per turn (walk turns hold one function)
        assert turn_limit_violations([no_split, split], max(max_calls, 1)) == []
        # every inserted function is a nested neighbour of the function it follows
        assert insert_violations([no_split, split], nested) == []
        # the walk's functions are all still there, in order
        walked = [
            f
            for t in no_split.turns
            if t.op in ("walk", "merge", "insert_short")
            for f in t.functions
            if not (t.op == "insert_short" and f == t.functions[-1])
        ]
        assert walked == fsp.path
        # split = no_split plus exactly one empty, labelled turn before a call turn holding its target
        empties = [i for i, t in enumerate(split.turns) if not t.functions]
        assert len(empties) == 1
        k = empties[0]
        empty = split.turns[k]
        assert empty.op == "split" and empty.label == split.variant and empty.label in ("miss_func", "miss_params")
        assert empty.target in split.turns[k + 1].functions
        if empty.label == "miss_params":
            assert required[empty.target]
        assert split.turns[:k] + split.turns[k + 1 :] == no_split.turns
        assert all(t.label == "call" for t in no_split.turns)
        # same seed, same output
        assert augment_fsp(fsp, nested, gs, required) == [no_split, split]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=8), st.integers(0, 10**6), st.integers(1, 3))
def test_merge_never_exceeds_the_limit(path, seed, max_calls):
    merged = merge_turns(initial_turns(path), random.Random(seed), p=1.0, max_calls=max_calls)
    assert all(len(t.functions) <= max_calls for t in merged)
    assert [f for t in merged for f in t.functions] == path
    assert all(t.op == ("merge" if len(t.functions) > 1 else "walk") for t in merged)


def test_merge_with_p_one_fills_turns_and_p_zero_keeps_them():
    path = ["a", "b", "c", "d", "e", "f", "g"]
    assert [t.functions for t in merge_turns(initial_turns(path), random.Random(0), 1.0, 3)] == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert [t.functions for t in merge_turns(initial_turns(path), random.Random(0), 0.0, 3)] == [[x] for x in path]


def test_insert_short_and_long():
    turns = initial_turns(["get_distance", "plan_route", "get_eta"])
    nested = {"get_distance": ["convert_distance"]}
    short = insert_nested_calls(turns, nested, random.Random(0), short_p=1.0, long_p=0.0)
    assert short[0].functions == ["get_distance", "convert_distance"] and short[0].op == "insert_short"
    long = insert_nested_calls(turns, nested, random.Random(0), short_p=0.0, long_p=1.0)
    inserted = [t for t in long if t.op == "insert_long"]
    assert len(inserted) == 1 and inserted[0].functions == ["convert_distance"] and inserted[0].target == "get_distance"
    assert long.index(inserted[0]) >= 2  # after a later turn, not right after its source
    with pytest.raises(ValueError, match="sum to at most 1"):
        insert_nested_calls(turns, nested, random.Random(0), short_p=0.8, long_p=0.5)


def test_split_of_a_single_turn_and_miss_params_fallback():
    turns = initial_turns(["list_saved_places"])
    out = split_turn(turns, random.Random(0), miss_func_p=0.0, required={"list_saved_places": []})
    assert out[0].functions == [] and out[0].label == "miss_func" and out[0].target == "list_saved_places"


def test_ops_are_seeded_per_fsp():
    fsp = FSP(fsp_id="x", category="c", path=["a", "b", "c", "d"], start="a", seed=0)
    nested = {"a": ["z"], "b": ["z"], "c": ["z"]}
    runs = {tuple(tuple(t.functions) for t in augment_fsp(fsp, nested, seed=s)[1].turns) for s in range(20)}
    assert len(runs) > 1


def test_an_action_and_its_undoing_never_share_a_turn():
    """Read in the default run: 'make calendar event ... and remove the calendar event', 'book the
    flight ... and then cancel it' (44 of 1376 turns). Merge keeps them apart; Insert appends
    another neighbour, or none; a later turn (long insert, the walk itself) may still undo."""
    from magnet_lib.graph.node_operations import undoes

    assert undoes("create_calendar_event", "delete_calendar_event") and undoes("book_flight", "cancel_flight_booking")
    assert undoes("block_contact", "unblock_contact") and not undoes("get_flight_details", "cancel_flight_booking")
    path = ["create_calendar_event", "delete_calendar_event", "get_event_details", "book_flight", "cancel_flight_booking"]
    merged = merge_turns(initial_turns(path), random.Random(0), 1.0, 3)
    assert [t.functions for t in merged] == [
        ["create_calendar_event"],
        ["delete_calendar_event", "get_event_details", "book_flight"],
        ["cancel_flight_booking"],
    ]
    turns = initial_turns(["create_calendar_event", "list_events"])
    only_undo = {"create_calendar_event": ["delete_calendar_event"]}
    assert insert_nested_calls(turns, only_undo, random.Random(0), short_p=1.0, long_p=0.0)[0].functions == ["create_calendar_event"]
    both = {"create_calendar_event": ["delete_calendar_event", "set_event_reminder"]}
    for seed in range(6):
        first = insert_nested_calls(turns, both, random.Random(seed), short_p=1.0, long_p=0.0)[0]
        assert first.functions == ["create_calendar_event", "set_event_reminder"]
    late = insert_nested_calls(turns, only_undo, random.Random(0), short_p=0.0, long_p=1.0)
    assert [t.functions for t in late if t.op == "insert_long"] == [["delete_calendar_event"]]


def test_a_redo_or_a_change_of_what_was_just_made_never_shares_a_turn():
    """Read in the default run: 'remove the stock from the watchlist ... and put in stock to
    watchlist' (the same symbol: undone and done again in one breath), and Insert's 'book a
    flight ... and change the booking'. A later turn may still do either."""
    from magnet_lib.graph.node_operations import pointless_together

    assert pointless_together("remove_stock_from_watchlist", "add_stock_to_watchlist")
    assert pointless_together("book_flight", "change_flight_booking")
    assert pointless_together("send_event_invitation", "revoke_event_invitation")
    assert not pointless_together("delete_calendar_event", "book_flight")  # another thing: fine together
    assert not pointless_together("unblock_contact", "get_contact_details")
    path = ["add_stock_to_watchlist", "remove_stock_from_watchlist", "add_stock_to_watchlist", "get_stock_quote"]
    merged = merge_turns(initial_turns(path), random.Random(0), 1.0, 3)
    assert all(
        not any(pointless_together(f, g) for f in t.functions for g in t.functions[i + 1 :])
        for t in merged
        for i in range(len(t.functions))
    )
    inserted = insert_nested_calls(
        initial_turns(["search_flights", "book_flight"]), {"book_flight": ["change_flight_booking"]}, random.Random(0), 1.0, 0.0
    )
    assert inserted[-1].functions == ["book_flight"]  # no other neighbour: nothing inserted


def test_an_action_and_the_cancelling_of_it_never_share_a_turn():
    """Read in the default run: 'please transfer between the accounts ... and cancel the
    scheduled transfer' (Insert appended the cancellation the transfer's id allows)."""
    from magnet_lib.graph.node_operations import undoes

    assert undoes("transfer_between_accounts", "cancel_scheduled_transfer")
    assert not undoes("get_transfer_status", "cancel_scheduled_transfer")
    turns = insert_nested_calls(
        initial_turns(["list_bank_accounts", "transfer_between_accounts"]),
        {"transfer_between_accounts": ["cancel_scheduled_transfer"]},
        random.Random(0),
        1.0,
        0.0,
    )
    assert turns[-1].functions == ["transfer_between_accounts"]
