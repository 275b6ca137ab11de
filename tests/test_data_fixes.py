"""The generators' fixes found by the data lint (issue 11), each with the defect it removes."""

from __future__ import annotations

import random

from magnet_lib.distillation.export import hf_record
from magnet_lib.distillation.mixing import SFTExample
from magnet_lib.distillation.single_turn import make_single_turn
from magnet_lib.graph.walk import initial_fsps
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import Call, NegativeHint, Tool, Trajectory
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.pool.execution import make_runtime
from magnet_lib.settings import load_settings
from magnet_lib.training import chat_format as cf
from magnet_lib.training.hints import preference_pairs
from magnet_lib.translation.forth_translation import field_score, find_in_outputs, match_score
from magnet_lib.translation.planner import HistoryCall, plan_turn

WEATHER = {t.name: t for t in builtin_environments()["weather"].tools()}
NUMBER = {"type": "number"}


def test_values_flow_by_name_and_quantity_never_by_type_alone():
    # a temperature is no wind speed, whatever their types
    assert find_in_outputs("wind_speed", NUMBER, [{"temperature": 21.5}], set()) is None
    assert match_score("wind_speed", "temperature") == 0.0
    assert find_in_outputs("wind_speed", NUMBER, [{"temperature": 21.5, "wind_speed": 14.2}], set()) == ("wind_speed", 14.2)
    # price <- available_cash shared only a type
    assert find_in_outputs("price", NUMBER, [{"available_cash": 7500.0}], set()) is None
    # a parameter named only 'value' takes what its description names
    assert field_score("value", {"type": "number", "description": "The distance to convert."}, "distance") >= 2.0
    assert field_score("value", {"type": "number", "description": "The distance to convert."}, "duration_minutes") < 2.0


def _conversion_plan(output: dict, seed: int) -> dict:
    runtime = make_runtime(list(WEATHER.values()), 0)
    history = [HistoryCall(turn=0, call=Call(name="get_current_weather", arguments={"location_id": "x"}), output=output)]
    plan = plan_turn(["convert_weather_temperature"], WEATHER, history, runtime, random.Random(seed), optional_p=0.0)
    return {p: s.value for p, s in plan[0].arguments.items()}


def test_conversions_take_the_unit_of_their_source_and_are_never_no_ops():
    for seed in range(12):
        args = _conversion_plan({"temperature": 295.0, "unit": "kelvin"}, seed)
        assert args["temperature"] == 295.0 and args["from_unit"] == "kelvin" and args["to_unit"] != "kelvin"
    # a unit in an enclosing object counts too (a forecast's days share one unit)
    args = _conversion_plan({"days": [{"high_temperature": 30.5}], "unit": "celsius"}, 0)
    assert args["temperature"] == 30.5 and args["from_unit"] == "celsius" and args["to_unit"] != "celsius"


def test_walks_start_where_a_user_can_state_the_inputs():
    # cancel needs the id only schedule's output gives (a nested edge): its walk starts at schedule
    adjacency = {"schedule": [("cancel", True)], "cancel": [("status", False)], "status": []}
    fsps = initial_fsps("cat", adjacency, walk_length=7, min_turns=2, seed=0)
    assert all(f.path[0] != "cancel" for f in fsps)
    assert ["schedule", "cancel", "status"] in [f.path for f in fsps]


def test_single_turn_items_use_every_function_of_the_category():
    settings = load_settings()
    tools = builtin_environments()["weather"].tools()
    made, _ = make_single_turn(tools, {"single": len(tools)}, settings, TaskRunner(settings.llm))
    used = {f for t in made for f in t.functions}
    assert len(used) >= len(tools) - 2  # a function whose plan cannot execute alone may be skipped
    queries = [t.messages[1]["content"] for t in made]
    assert len(set(queries)) == len(queries)


def test_no_preference_pair_from_a_heldout_walk(tmp_path):
    traj = Trajectory(traj_id="t1", kind="multi_turn", category="weather", messages=[], tools=[], episode_id="ep1", parent_fsp_id="walk1")
    hint = NegativeHint(
        hint_id="h1", episode_id="ep1", traj_id="t1", category="weather", turn_index=0, error_type=3, reason="r", source="injected"
    )
    pairs, counts = preference_pairs(load_settings(home=str(tmp_path)), [hint], [], [traj], pool={}, heldout_walks={"walk1"})
    assert pairs == [] and counts == {"heldout": 1}
    _, counts = preference_pairs(load_settings(home=str(tmp_path)), [hint], [], [traj], pool={}, heldout_walks=set())
    assert counts == {"no_reference": 1}  # a train walk goes on to pairing


def test_hf_export_keeps_the_tool_json_only_in_tools():
    spec = {"type": "function", "function": {"name": "get_current_weather", "description": "d", "parameters": {"type": "object"}}}
    row = SFTExample(
        traj_id="t", kind="single", category="weather", messages=[cf.system([spec]), cf.user("hi")], tools=[spec], functions=[]
    )
    record = hf_record(row)
    system = record["messages"][0]["content"]
    assert '"name": "get_current_weather"' not in system and system.startswith("You are an expert")
    assert "get_current_weather" in record["tools"]


def test_no_empty_or_made_up_world_values():
    from magnet_lib.vocabulary import refers_to_world

    # an emptied cart's restaurant id "" is no value for the next call
    assert find_in_outputs("restaurant_id", {"type": "string"}, [{"restaurant_id": "", "items": []}], set()) is None
    # paths, urls and ids of a real world are never invented ('file_path alpha')
    assert all(refers_to_world(n) for n in ("file_path", "file_paths", "url", "download_link", "order_id", "email"))
    assert not any(refers_to_world(n) for n in ("message", "city", "amount"))


def test_the_mix_keeps_the_pool_covered():
    from magnet_lib.distillation.mixing import coverage_first

    def item(i: int, fn: str) -> Trajectory:
        return Trajectory(traj_id=f"t{i}", kind="single", category="c", messages=[], tools=[], functions=[fn])

    ordered = [item(0, "a"), item(1, "a"), item(2, "a"), item(3, "b"), item(4, "c")]
    assert [t.traj_id for t in coverage_first(ordered, set())[:3]] == ["t0", "t3", "t4"]
    assert [t.traj_id for t in coverage_first(ordered, {"a"})[:2]] == ["t3", "t4"]


def test_an_unusable_nested_output_falls_back_to_another_source():
    """view_food_cart on an empty cart has no item id for remove_item_from_food_cart: a plan
    without same-turn sources is tried instead of rejecting the turn."""
    food = {t.name: t for t in builtin_environments()["food_delivery"].tools()}
    runtime = make_runtime(list(food.values()), 0)
    names = ["view_food_cart", "remove_item_from_food_cart"]
    nested = plan_turn(names, food, [], runtime, random.Random(0), optional_p=0.0)
    assert nested[1].arguments["item_id"].kind == "same_turn"
    try:
        flat = plan_turn(names, food, [], runtime, random.Random(0), optional_p=0.0, same_turn=False)
    except ValueError:
        return  # no item id anywhere in the world: planning fails instead of producing an empty-cart call
    assert flat[1].arguments["item_id"].kind != "same_turn"


def _edges(category: str):
    from magnet_lib.graph.dependency import judge_category

    settings = load_settings()
    tools = builtin_environments()[category].tools()
    edges, _ = judge_category(tools, TaskRunner(settings.llm), candidates=30, batch=30, prefilter=True, seed=0)
    return tools, edges


def test_premises_of_state_in_the_offline_judge():
    from magnet_lib.graph.dependency import REQUIRED_STATE, profile, state_premise
    from magnet_lib.graph.walk import required_states

    tools, edges = _edges("messaging")
    required = required_states(e.model_dump() for e in edges)
    assert required["unblock_contact"] == ["block_contact"]  # unblocking needs a block first
    by = {t.name: profile(t) for t in tools}
    assert state_premise(by["unblock_contact"], by["block_contact"]) == (
        state_premise(by["unblock_contact"], by["block_contact"])[0],
        False,
    )
    assert state_premise(by["get_contact_info"], by["block_contact"]) is None  # a look changes no state
    srcs = {e.src for e in edges}
    assert {"block_contact", "unblock_contact", "mark_message_as_read", "delete_chat_message"} <= srcs  # no dead ends left
    _, food = _edges("food_delivery")
    assert required_states(e.model_dump() for e in food)["place_food_order"] == ["add_item_to_food_cart"]  # 'Order the cart'
    assert not any(REQUIRED_STATE in e.evidence for e in food if e.src == "add_tip_to_food_order")  # an order is no container
    # a deleted file cannot be read: only a check or a listing follows a deletion
    _, files = _edges("files")
    assert ("delete_file", "read_file") not in {(e.src, e.dst) for e in files}
    assert ("write_file", "read_file") in {(e.src, e.dst) for e in files}

    # a login comes before the other actions of its service (a session premise)
    def spec(name: str, required: list[str]) -> Tool:
        props = {p: {"type": "string"} for p in required}
        return Tool(name=name, category="c", tool_class="k", description=name, source="t", executable=False,
                    parameters={"type": "object", "properties": props, "required": required})  # fmt: skip

    login, act, look = profile(spec("login_user", ["password"])), profile(spec("delete_note", ["note"])), profile(spec("get_weather", []))
    assert state_premise(login, act) is not None and state_premise(login, act)[1]
    assert state_premise(login, look) is None


def test_walks_and_inserts_respect_required_states():
    from magnet_lib.graph.node_operations import insert_nested_calls
    from magnet_lib.models import FSPTurn

    # unblock needs block (state); both need a contact id that find gives (nested)
    adjacency = {
        "find": [("block", True), ("unblock", True), ("info", True)],
        "block": [("unblock", False), ("info", False)],
        "unblock": [("block", False), ("info", False)],
        "info": [("unblock", True), ("block", True)],
    }
    requires = {"unblock": ["block"]}
    for seed in range(20):
        for fsp in initial_fsps("cat", adjacency, walk_length=6, walks_per_node=2, min_turns=2, seed=seed, requires=requires):
            for i, name in enumerate(fsp.path):
                if name == "unblock":
                    assert "block" in fsp.path[:i], fsp.path
                if name in ("block", "info", "unblock"):
                    assert "find" in fsp.path[:i], fsp.path
    # Insert never adds a function whose state is not made yet
    turns = [FSPTurn(functions=["find"], op="walk"), FSPTurn(functions=["info"], op="walk")]
    for seed in range(30):
        out = insert_nested_calls(turns, {"find": ["unblock"], "info": ["unblock"]}, random.Random(seed), 1.0, 0.0, 3, requires)
        assert all("unblock" not in t.functions for t in out)
    out = insert_nested_calls(turns, {"find": ["unblock"]}, random.Random(0), 1.0, 0.0, 3, None)
    assert out[0].functions == ["find", "unblock"]  # without the state map the paper's Insert is unchanged


def test_a_turn_runs_in_its_order_and_an_action_passes_on_what_it_acted_on():
    from magnet_lib.translation.forth_translation import PlannedCall, ValueSource, plan_rounds
    from magnet_lib.translation.planner import acted_on

    menu = PlannedCall(name="get_menu", arguments={"restaurant_id": ValueSource(kind="query", value="R1")})
    add = PlannedCall(name="add_item", arguments={"item_id": ValueSource(kind="same_turn", key="item_id", call=0)})
    place = PlannedCall(name="place_order", arguments={"address": ValueSource(kind="query", value="1 Main St")})
    assert plan_rounds([menu, add, place]) == [0, 1, 1]  # placing never runs before the dish is added
    assert plan_rounds([menu, place]) == [0, 0]
    blocked = HistoryCall(
        turn=0, call=Call(name="block_contact", arguments={"contact_id": "C-7"}), output={"success": True, "message": "ok"}
    )
    assert acted_on(blocked)["contact_id"] == "C-7"  # unblocking takes the contact that was blocked
    looked = HistoryCall(turn=0, call=Call(name="get_contact_info", arguments={"contact_id": "C-7"}), output={"contact_id": "C-8"})
    assert acted_on(looked) == {"contact_id": "C-8"}  # a real output speaks for itself


def test_later_probes_try_options_and_lists_a_user_can_state():
    from magnet_lib.translation.episodes import probe_optional_p

    files = {t.name: t for t in builtin_environments()["files"].tools()}
    runtime = make_runtime(list(files.values()), 0)
    assert probe_optional_p(0.2, 0) == 0.2 and probe_optional_p(0.2, 10) == 1.0
    first = [plan_turn(["write_file"], files, [], runtime, random.Random(s), 0, optional_p=1.0)[0] for s in range(8)]
    assert all("write_mode" not in p.arguments for p in first)  # the first try states only what the world gives the user
    later = [plan_turn(["write_file"], files, [], runtime, random.Random(s), 3, optional_p=1.0)[0] for s in range(8)]
    assert any(p.arguments["write_mode"].value == "overwrite" for p in later if "write_mode" in p.arguments)
    # compress_files(file_paths): a list of files the user has
    plan = plan_turn(["compress_files"], files, [], runtime, random.Random(0), 0, optional_p=0.0)[0]
    paths = plan.arguments["file_paths"].value
    assert len(paths) == 2 and all(p in runtime.user_values()["file_path"] for p in paths)


def test_offline_forth_translation_calls_in_the_turns_order():
    from magnet_lib.translation.forth_translation import ForthTranslateInput, PlannedCall, ValueSource, offline_answer

    food = {t.name: t for t in builtin_environments()["food_delivery"].tools()}
    plan = [
        PlannedCall(name="get_restaurant_menu", arguments={"restaurant_id": ValueSource(kind="query", value="R1")}),
        PlannedCall(name="add_item_to_food_cart", arguments={"item_id": ValueSource(kind="same_turn", key="item_id", call=0)}),
        PlannedCall(
            name="place_food_order",
            arguments={
                "delivery_address": ValueSource(kind="query", value="1 Main St"),
                "payment_method": ValueSource(kind="query", value="card"),
            },
        ),
    ]
    specs = [{"name": n, "description": food[n].description, "parameters": food[n].parameters} for n in food]
    first = offline_answer(ForthTranslateInput(queries=["q"], functions=specs, plan=plan, max_calls=3))
    assert [c.name for c in first.calls] == ["get_restaurant_menu"]  # not the order before the dish is in the cart


def test_a_nested_action_keeps_its_verb():
    from magnet_lib.translation.back_translation import FunctionRequest, _goal

    for seed in range(10):
        delete = FunctionRequest(function="delete_chat_message", description="Delete a message the user sent.", nested=True)
        text = _goal(delete, None, random.Random(seed))
        assert any(v in text for v in ("delete", "remove", "get rid of")) and "give me the chat message" not in text, text
        unfollow = _goal(FunctionRequest(function="unfollow_user", description="Stop following.", nested=True), None, random.Random(seed))
        assert "unfollow" in unfollow, unfollow
        # a look-up stays the implicit goal of the paper's Insert
        look = _goal(FunctionRequest(function="get_route_details", description="Route steps.", nested=True), None, random.Random(seed))
        assert "route details" in look and "get" not in look.split(), look


def test_a_value_named_by_the_object_is_not_named_twice():
    from magnet_lib.translation.back_translation import FunctionRequest, _clause

    for seed in range(12):
        req = FunctionRequest(function="search_posts_by_hashtag", description="Posts carrying a hashtag.", values={"hashtag": "travel"})
        text = _clause(req, None, random.Random(seed))
        assert text.count("hashtag") == 1 and '"travel"' in text, text


def test_a_summary_of_parallel_calls_tells_them_apart():
    from magnet_lib.distillation.teacher import TeacherStepInput, offline_summary

    outs = [
        {
            "function": "calculate_affordable_shares",
            "description": "",
            "arguments": {"price": p},
            "output": {"quantity": q, "total_cost": c},
        }
        for p, q, c in ((185.2, 13, 2407.6), (92.5, 27, 2497.5))
    ]
    for query in ("How many shares can I buy at each price?", "Work out the affordable shares for both.", "q3", "q4"):
        item = TeacherStepInput(tools=[], transcript=[{"role": "user", "content": query}], expected="text", turn_outputs=outs)
        text = offline_summary(item)
        assert text.count("affordable shares") == 1 and "first" in text and "second" in text, text
        assert "13" in text and "27" in text


def test_a_converted_amount_never_pays_in_another_currency():
    bank = {t.name: t for t in builtin_environments()["banking"].tools()}
    runtime = make_runtime(list(bank.values()), 0)
    converted = HistoryCall(
        turn=0,
        call=Call(name="convert_currency_amount", arguments={"amount": 100.0, "from_currency": "USD", "to_currency": "CHF"}),
        output={"amount": 100.0, "from_currency": "USD", "converted_amount": 88.1, "to_currency": "CHF", "rate": 0.881},
    )
    for seed in range(8):
        plan = plan_turn(["check_sufficient_funds"], bank, [converted], runtime, random.Random(seed), optional_p=0.0)
        assert plan[0].arguments["amount"].value != 88.1 and plan[0].arguments["amount"].kind == "query"
    # a converter may take it further
    again = plan_turn(["convert_currency_amount"], bank, [converted], runtime, random.Random(0), optional_p=0.0)
    assert again[0].arguments["amount"].kind in ("previous_turn", "query")


def test_single_turn_items_reach_functions_that_act_on_what_another_call_makes():
    from magnet_lib.distillation.single_turn import preparation_leads

    tools = builtin_environments()["navigation"].tools()
    leads = preparation_leads(tools)
    assert leads["get_eta"][-1] == "start_navigation" and leads["get_eta"][0] not in leads  # a trip under way, made from what a user knows
    settings = load_settings()
    made, _ = make_single_turn(tools, {"single": len(tools)}, settings, TaskRunner(settings.llm))
    used = {f for t in made for f in t.functions}
    assert {"get_eta", "stop_navigation"} & used  # they need a trip no single call could start
    for t in made:  # the preparation is not part of the item
        calls = [c["function"]["name"] for m in t.messages if m.get("role") == "assistant" for c in m.get("tool_calls") or []]
        assert set(calls) <= set(t.functions)


def test_a_walk_does_not_go_straight_back_when_it_can_go_on():
    adjacency = {"block": [("unblock", False), ("info", False)], "unblock": [("block", False), ("info", False)], "info": []}
    for seed in range(30):
        for fsp in initial_fsps("cat", adjacency, walk_length=5, min_turns=2, seed=seed):
            assert fsp.path[:3] != ["block", "unblock", "block"] and fsp.path[:3] != ["unblock", "block", "unblock"], fsp.path


# --------------------------------------------------------------------------- more calls per item, distinct walks


def _travel_for_each(seed: int):
    from magnet_lib.translation.planner import for_each_plan, probe_plan

    travel = {t.name: t for t in builtin_environments()["travel"].tools()}
    runtime = make_runtime(list(travel.values()), 0)
    plan = plan_turn(["search_hotels", "check_hotel_room_availability"], travel, [], runtime, random.Random(seed), optional_p=0.0)
    return travel, runtime, plan, for_each_plan(plan, travel, random.Random(seed), max_parallel=3), probe_plan


def test_a_lookup_is_made_for_each_of_the_first_elements_of_a_list_the_turn_returns():
    """'Find hotels in Tokyo and the room availability of the first two': one search, then one
    availability check per hotel it listed, the first n in order, side by side, and the query
    says how many."""
    from magnet_lib.models import AugmentedFSP, FSPTurn
    from magnet_lib.translation.episodes import translate

    travel, runtime, plan, wide, probe = _travel_for_each(0)
    assert wide is not None and [c.name for c in wide][0] == "search_hotels"
    copies = [c for c in wide if c.name == "check_hotel_room_availability"]
    assert 2 <= len(copies) <= 3 and [c.arguments["hotel_id"].nth for c in copies] == list(range(len(copies)))
    assert all(c.parallel == "hotel_id" for c in copies)
    failure = probe(wide, travel, runtime)  # runs when the search lists enough hotels, else the probe says why
    assert failure is None or f"no value number {len(copies)}" in failure
    # a plan without such a call (an action that makes a new thing) has nothing to copy
    from magnet_lib.translation.planner import for_each_plan

    book = plan_turn(["search_hotels", "book_hotel_room"], travel, [], runtime, random.Random(0), optional_p=0.0)
    assert for_each_plan(book, travel, random.Random(0), max_parallel=3) is None

    settings = load_settings(distill={"parallel_p": 1.0})
    fsp = AugmentedFSP(
        fsp_id="each", parent_fsp_id="w", category="travel", variant="no_split", seed=0,
        turns=[FSPTurn(functions=["search_hotels", "check_hotel_room_availability"], op="insert_short")],
    )  # fmt: skip
    seen = 0
    for seed in range(6):
        [episode] = translate([fsp.model_copy(update={"seed": seed, "fsp_id": f"each{seed}"})], list(travel.values()), settings,
                              TaskRunner(settings.llm))  # fmt: skip
        assert episode.status == "ok", episode.reject_reason
        turn = episode.turns[0]
        checks = [c for c in turn.calls if c.name == "check_hotel_room_availability"]
        if len(checks) < 2:
            continue
        seen += 1
        listed = [h["hotel_id"] for h in turn.outputs[0]["hotels"]]
        assert [c.arguments["hotel_id"] for c in checks] == listed[: len(checks)]  # the first n, in order, each once
        assert len({turn.rounds[k] for k, c in enumerate(turn.calls) if c.name == "check_hotel_room_availability"}) == 1
        n = ["two", "three"][len(checks) - 2]
        assert f"first {n}" in turn.query or f"top {n}" in turn.query, turn.query
        assert "check hotel room availability" not in turn.query.lower()  # a goal, not the step named
    assert seen >= 2


def test_a_copy_past_the_end_of_the_list_fails_its_probe():
    from magnet_lib.translation.forth_translation import PlannedCall, ValueSource, resolve_same_turn

    planned = PlannedCall(name="get_x", arguments={"x_id": ValueSource(kind="same_turn", call=0, key="x_id", nth=1)})
    schemas = {"x_id": {"type": "string"}}
    assert resolve_same_turn(planned, {0: {"xs": [{"x_id": "a"}, {"x_id": "b"}]}}, schemas).arguments == {"x_id": "b"}
    try:
        resolve_same_turn(planned, {0: {"xs": [{"x_id": "a"}]}}, schemas)
    except ValueError as exc:
        assert "no value number 2" in str(exc)
    else:
        raise AssertionError("a second copy of a one-element list must fail")


def test_a_repeated_walk_is_dropped_and_another_drawn():
    from collections import Counter

    # from 'a' there is one path (a, b): asking three walks of it gives one, the repeats dropped
    counts: Counter = Counter()
    fsps = initial_fsps("cat", {"a": [("b", False)], "b": []}, walk_length=4, walks_per_node=3, seed=0, tries=3, counts=counts)
    assert [f.path for f in fsps] == [["a", "b"]]
    assert counts["drawn"] == counts["distinct"] + counts["repeated"] + counts["short"] and counts["repeated"] >= 2
    # four functions all linked: 6 paths of 3 from each start; three distinct walks per start when asked, never one twice
    clique = {n: [(m, False) for m in "abcd" if m != n] for n in "abcd"}
    short = 0
    for seed in range(10):
        counts = Counter()
        fsps = initial_fsps("cat", clique, walk_length=3, walks_per_node=3, seed=seed, tries=4, counts=counts)
        paths = [tuple(f.path) for f in fsps]
        assert len(paths) == len(set(paths)) == 12 and counts["distinct"] == 12
        once = initial_fsps("cat", clique, walk_length=3, walks_per_node=3, seed=seed, tries=1)
        assert len({tuple(f.path) for f in once}) == len(once) <= 12
        short += len(once) < 12  # one draw per wanted walk: a repeat is dropped and nothing replaces it
    assert short


def test_look_premises_are_true_edges_only():
    """A look at a thing, then an action on that same thing by its identifier: an edge (no
    value flows, so never nested); a look at another kind of thing is none."""
    from magnet_lib.graph.dependency import LOOKED

    _, shop = _edges("shopping")
    looked = {(e.src, e.dst): e for e in shop if LOOKED in e.evidence}
    assert ("get_product_details", "add_product_to_cart") in looked and not looked[("get_product_details", "add_product_to_cart")].nested
    assert ("check_product_stock", "add_product_to_cart") in {(e.src, e.dst) for e in shop}
    _, home = _edges("smart_home")
    assert ("get_thermostat_reading", "set_light_state") not in {(e.src, e.dst) for e in home}  # a thermostat is no light
    assert not any(LOOKED in e.evidence and e.src.startswith("convert") for e in home)


def test_an_action_needs_a_new_provider_to_run_again():
    """cancel uses up the order place made: a walk cancels again only after another place; a
    look-up (status) may look again."""
    adjacency = {
        "place": [("cancel", True), ("status", True)],
        "cancel": [("status", False), ("place", False)],
        "status": [("cancel", True), ("place", False)],
    }
    again = 0
    for seed in range(40):
        for fsp in initial_fsps("cat", adjacency, walk_length=7, seed=seed):
            cancels = [i for i, n in enumerate(fsp.path) if n == "cancel"]
            for a, b in zip(cancels, cancels[1:]):
                assert "place" in fsp.path[a + 1 : b], fsp.path
            again += any(fsp.path.count(n) > 1 for n in ("status",))
    assert again  # looking again stays possible


def test_a_reference_after_parallel_calls_says_which_one():
    """Three balance checks side by side give three account ids: 'the account id you just got'
    would not say which, so the request names its place among the turn's outputs."""
    from magnet_lib.translation.forth_translation import PlannedCall, ValueSource
    from magnet_lib.translation.planner import function_requests

    banking = {t.name: t for t in builtin_environments()["banking"].tools()}
    ids = ["ACC-1", "ACC-2", "ACC-3"]
    history = [
        HistoryCall(turn=0, call=Call(name="check_sufficient_funds", arguments={"account_id": a, "amount": 5.0}), output={"account_id": a})
        for a in ids
    ]
    for value, said in zip(ids, ["first", "second", "third"]):
        plan = [
            PlannedCall(
                name="get_account_balance",
                arguments={"account_id": ValueSource(kind="previous_turn", value=value, key="account_id", call=0)},
            )
        ]
        [request] = function_requests(plan, banking, history)
        assert request.ordinals == {"account_id": said}
    one = [history[0]]
    plan = [
        PlannedCall(
            name="get_account_balance", arguments={"account_id": ValueSource(kind="previous_turn", value="ACC-1", key="account_id", call=0)}
        )
    ]
    assert function_requests(plan, banking, one)[0].ordinals == {}  # one candidate needs no ordinal
