"""The data lint: each rule finds a planted defect and passes its clean twin."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from magnet_lib.lint import Dataset, Item, Pair, from_records, lint
from magnet_lib.lint.report import lint_tables
from magnet_lib.settings import LintSettings

TOOLS = [
    {"name": "get_current_weather", "description": "Current conditions at a location.", "parameters": {"properties": {"location_id": {}}}},
    {
        "name": "convert_wind_speed",
        "description": "Convert a wind speed between km/h, mph and knots.",
        "parameters": {"properties": {"wind_speed": {"description": "The speed."}, "from_unit": {}, "to_unit": {}}},
    },
    {
        "name": "convert_weather_temperature",
        "description": "Convert a temperature between Celsius and Fahrenheit.",
        "parameters": {"properties": {"temperature": {}, "from_unit": {}, "to_unit": {}}},
    },
    {"name": "list_cart", "description": "The dishes in the cart.", "parameters": {"properties": {}}},
    {"name": "remove_from_cart", "description": "Take a dish out of the cart.", "parameters": {"properties": {"item_id": {}}}},
]


def _call(i: int, name: str, **args) -> dict:
    return {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def conversation(*turns, kind: str = "multi_turn", item_id: str = "x", split: str = "train", episode_id: str = "ep") -> Item:
    """turns: (query, [(call, output), ...] per round, summary)."""
    messages: list[dict] = [{"role": "system", "content": "You call functions."}]
    n = 0
    for query, rounds, summary in turns:
        messages.append({"role": "user", "content": query})
        for rnd in rounds:
            calls = []
            for name, args, _out in rnd:
                calls.append(_call(n, name, **args))
                n += 1
            messages.append({"role": "assistant", "content": "", "tool_calls": calls})
            for c, (_name, _args, out) in zip(calls, rnd, strict=True):
                messages.append({"role": "tool", "tool_call_id": c["id"], "name": _name, "content": json.dumps(out)})
        messages.append({"role": "assistant", "content": summary})
    return Item(item_id=item_id, messages=messages, tools=TOOLS, kind=kind, split=split, episode_id=episode_id)


WEATHER = {"temperature": 21.5, "wind_speed": 14.2, "unit": "celsius"}


def _weather_item(wind_arg: float, from_unit: str = "kmh", to_unit: str = "mph") -> Item:
    return conversation(
        ("What's the weather at LOC-1?", [[("get_current_weather", {"location_id": "LOC-1"}, WEATHER)]], "It is 21.5 degrees, wind 14.2."),
        (
            "And that wind in miles per hour?",
            [[("convert_wind_speed", {"wind_speed": wind_arg, "from_unit": from_unit, "to_unit": to_unit}, {"speed": 8.8})]],
            "About 8.8 mph.",
        ),
    )


def _figure(items: list[Item], name: str, pairs: list[Pair] | None = None, pool: list[str] | None = None) -> dict:
    return lint(Dataset(items=items, pairs=pairs or [], pool=pool)).figures[name]


def test_other_quantity_found_and_clean_twin_passes():
    bad = _figure([_weather_item(21.5)], "other_quantity")  # a temperature fed into a wind speed
    good = _figure([_weather_item(14.2)], "other_quantity")
    assert bad["count"] == 1 and good["count"] == 0 and good["total"] == 1


def test_unit_contradiction_and_noop_conversion():
    temp = {"temperature": 295.0, "unit": "kelvin"}

    def item(from_unit: str, to_unit: str) -> Item:
        return conversation(
            ("Weather at LOC-1?", [[("get_current_weather", {"location_id": "LOC-1"}, temp)]], "295.0 K."),
            (
                "In Fahrenheit?",
                [[("convert_weather_temperature", {"temperature": 295.0, "from_unit": from_unit, "to_unit": to_unit}, {"t": 71.3})]],
                "71.3 F.",
            ),
        )

    assert _figure([item("fahrenheit", "celsius")], "unit_contradiction")["count"] == 1
    assert _figure([item("kelvin", "fahrenheit")], "unit_contradiction")["count"] == 0
    assert _figure([item("kelvin", "kelvin")], "noop_conversion")["count"] == 1
    assert _figure([item("kelvin", "fahrenheit")], "noop_conversion")["count"] == 0


def _cart_item(query: str) -> Item:
    cart = {"items": [{"item_id": "IT-100", "name": "Ramen"}, {"item_id": "IT-200", "name": "Sushi"}]}
    return conversation(
        ("What's in my cart?", [[("list_cart", {}, cart)]], "Ramen and Sushi."),
        (query, [[("remove_from_cart", {"item_id": "IT-100"}, {"removed": True})]], "Removed."),
    )


def test_ambiguous_reference_needs_a_cue():
    assert _figure([_cart_item("Take the dish from that result out of the cart.")], "ambiguous_reference")["count"] == 1
    assert _figure([_cart_item("Take the first dish out of the cart.")], "ambiguous_reference")["count"] == 0


def test_pasted_description_and_named_nested_call():
    wind = {"wind_speed": 14.2, "wind_unit": "kmh"}

    def item(query: str) -> Item:
        rounds = [
            [("get_current_weather", {"location_id": "LOC-1"}, wind)],
            [("convert_wind_speed", {"wind_speed": 14.2, "from_unit": "kmh", "to_unit": "mph"}, {"speed": 8.8})],
        ]
        return conversation((query, rounds, "Wind 8.8 mph."))

    pasted = item("Current conditions at a location. Then convert a wind speed between km/h, mph and knots.")
    natural = item("How windy is it at LOC-1, in miles per hour?")
    assert _figure([pasted], "pasted_description")["count"] == 2
    assert _figure([natural], "pasted_description")["count"] == 0
    assert _figure([pasted], "nested_named") == {**_figure([pasted], "nested_named"), "count": 1, "total": 1}
    assert _figure([natural], "nested_named")["count"] == 0


def test_summary_drops_an_asked_field():
    out = {"booking_id": "BK-1", "price": 420.0, "status": "confirmed"}

    def item(summary: str) -> Item:
        return conversation(("Book it and tell me the price and status.", [[("list_cart", {}, out)]], summary))

    assert _figure([item("Booked, BK-1.")], "summary_drops_asked_field")["count"] == 1
    assert _figure([item("Booked BK-1: 420.0, confirmed.")], "summary_drops_asked_field")["count"] == 0
    assert _figure([item("Booked BK-1 for 9999.5, confirmed.")], "summary_unsupported_number")["count"] == 1
    assert _figure([item("Booked BK-1 for 420.0, confirmed.")], "summary_unsupported_number")["count"] == 0


def _single(name: str, query: str, item_id: str, kind: str = "single") -> Item:
    return conversation((query, [[(name, {"location_id": "LOC-1"}, {"ok": True})]], "Done."), kind=kind, item_id=item_id)


def test_coverage_per_kind_against_the_pool():
    pool = [t["name"] for t in TOOLS]
    one = [_single("get_current_weather", "Weather at LOC-1?", "a")]
    every = [_single(n, f"Please run {n}.", n) for n in pool]
    assert _figure(one, "coverage_single_turn", pool=pool)["share"] == pytest.approx(0.2)
    assert _figure(every, "coverage_single_turn", pool=pool)["share"] == 1.0


def test_duplicates_exact_and_near():
    a = _single("get_current_weather", "Weather at LOC-1 on day 3?", "a")
    same = _single("get_current_weather", "Weather at LOC-1 on day 3?", "b")
    near = _single("get_current_weather", "Weather at LOC-1 on day 4?", "c")
    other = _single("list_cart", "What's in my cart?", "d")
    assert _figure([a, same], "exact_duplicates")["count"] == 1
    assert _figure([a, near], "exact_duplicates")["count"] == 0
    assert _figure([a, near], "near_duplicates")["count"] == 1
    assert _figure([a, other], "near_duplicates")["count"] == 0


def test_conversation_length_and_one_turn_multi_turn():
    short = _single("get_current_weather", "Weather?", "s", kind="multi_turn")
    figs = lint(Dataset(items=[short, _weather_item(14.2)])).figures
    assert figs["single_turn_multi_turn"]["count"] == 1
    assert figs["user_turns_per_multi_turn"]["share"] == pytest.approx(1.5)
    assert figs["calls_per_multi_turn"]["share"] == pytest.approx(1.5)


def test_duplicated_tool_json_in_the_system_prompt():
    item = _weather_item(14.2)
    assert _figure([item], "duplicated_tool_json")["count"] == 0
    item.messages[0]["content"] += "\n" + json.dumps(TOOLS, indent=2)
    assert _figure([item], "duplicated_tool_json")["count"] == 1


def _pair(rejected_tail: list[dict], episode_id: str = "ep-train") -> Pair:
    prompt = [{"role": "user", "content": "Wind at LOC-1 in mph?"}]
    chosen = [
        {"role": "assistant", "content": "", "tool_calls": [_call(0, "get_current_weather", location_id="LOC-1")]},
        {"role": "tool", "tool_call_id": "call_0", "content": json.dumps(WEATHER)},
        {"role": "assistant", "content": "All set: wind 14.2."},
    ]
    return Pair("p", prompt, chosen, rejected_tail, episode_id=episode_id)


def test_pairs_from_heldout_episodes_block():
    held = conversation(("q", [], "a"), split="heldout", episode_id="ep-held")
    train = conversation(("q", [], "a"), split="train", episode_id="ep-train")
    same = _pair([{"role": "assistant", "content": "", "tool_calls": [_call(0, "get_current_weather", location_id="LOC-2")]}])
    report = lint(Dataset(items=[held, train], pairs=[_pair(same.rejected, "ep-held")]))
    assert report.figures["heldout_pairs"]["count"] == 1 and "heldout_pairs" in report.blocking_failed
    clean = lint(Dataset(items=[held, train], pairs=[same]))
    assert clean.figures["heldout_pairs"]["count"] == 0 and not clean.blocking_failed


def test_pair_style_and_implausible_corruption():
    wrong_id = [{"role": "assistant", "content": "", "tool_calls": [_call(0, "get_current_weather", location_id="LOC-2")]}]
    restyled = [
        {"role": "assistant", "content": None, "tool_calls": [_call(0, "get_current_weather", location_id="LOC-2") | {"id": "call_neg1_0"}]}
    ]
    mangled = [{"role": "assistant", "content": "", "tool_calls": [_call(0, "get_current_weather", location_id="2775.25-1")]}]
    assert _figure([], "pair_style_difference", [_pair(wrong_id)])["count"] == 0
    assert _figure([], "pair_style_difference", [_pair(restyled)])["count"] == 1
    assert _figure([], "implausible_corruption", [_pair(wrong_id)])["count"] == 0
    assert _figure([], "implausible_corruption", [_pair(mangled)])["count"] == 1


def test_thresholds_from_settings_and_tables(tmp_path):
    rows = [
        {
            "traj_id": "a",
            "kind": "multi_turn",
            "split": "train",
            "messages": json.dumps(_weather_item(21.5).messages),
            "tools": json.dumps(TOOLS),
        }
    ]
    frame = pl.DataFrame(rows)
    assert "other_quantity" in lint_tables(frame).failed
    lenient = LintSettings(max={"other_quantity": 1.0}, min={}, min_mean={})
    assert "other_quantity" not in lint_tables(frame, thresholds=lenient).failed
    # the CLI reads the same data from a file; a blocking failure exits 1
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    from magnet_assets.cli import app

    result = CliRunner().invoke(app, ["lint", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["figures"]["other_quantity"]["count"] == 1
    assert CliRunner().invoke(app, ["lint", str(path), "--strict"]).exit_code == 1


def test_records_of_other_shapes():
    """HF records (arguments as objects) and ShareGPT conversations lint like Magnet's tables."""
    item = _weather_item(21.5)
    hf = {"messages": [dict(m) for m in item.messages], "tools": TOOLS, "kind": "multi_turn"}
    for m in hf["messages"]:
        for c in m.get("tool_calls") or []:
            c["function"] = {**c["function"], "arguments": json.loads(c["function"]["arguments"])}
    data = from_records([hf])
    assert lint(data).figures["other_quantity"]["count"] == 1
    share = {
        "conversations": [
            {"from": "human", "value": "Weather at LOC-1?"},
            {"from": "function_call", "value": json.dumps({"name": "get_current_weather", "arguments": {}})},
        ],
        "tools": "[]",
    }
    assert len(from_records([share]).items[0].turns()[0].calls) == 1


# ----------------------------------------------------------------------------- meaning (issue 11, reviewer defects)
FLIGHT = {"flight_id": "FL-1", "origin_city": "London", "destination_city": "Tokyo", "price": 900.0}


def _trip(city: str) -> Item:
    return conversation(
        ("Show me my flight FL-1.", [[("get_flight_details", {"flight_id": "FL-1"}, FLIGHT)]], "It flies on Monday."),
        ("And hotels there?", [[("search_hotels", {"city": city}, {"hotels": [{"hotel_id": "HT-1"}]})]], "HT-1."),
    )


def test_origin_for_destination_found_and_clean_twin_passes():
    assert _figure([_trip("London")], "origin_for_destination")["count"] == 1  # the hotel is where the user flies to
    good = _figure([_trip("Tokyo")], "origin_for_destination")
    assert good["count"] == 0 and good["total"] == 1


def _conversions(second: float) -> Item:
    return conversation(
        (
            "What is 100 USD in EUR?",
            [[("convert_currency", {"amount": 100.0, "from_currency": "USD", "to_currency": "EUR"}, {"v": 92.0})]],
            "92 EUR.",
        ),
        (
            "And 250 USD?",
            [[("convert_currency", {"amount": second, "from_currency": "USD", "to_currency": "EUR"}, {"v": 230.0})]],
            "230 EUR.",
        ),
    )


def test_repeated_call_in_the_next_turn():
    assert _figure([_conversions(100.0)], "repeated_call")["count"] == 1
    good = _figure([_conversions(250.0)], "repeated_call")
    assert good["count"] == 0 and good["total"] == 1  # the calls after the first turn


def _schedules(query: str) -> Item:
    made = lambda sid: {"schedule_id": sid, "device_id": "DV-1", "time": "07:00"}
    return conversation(
        ("Schedule the lamp for 07:00.", [[("create_device_schedule", {"device_id": "DV-1", "time": "07:00"}, made("SC-101"))]], "Done."),
        ("And the fan for 08:00.", [[("create_device_schedule", {"device_id": "DV-2", "time": "08:00"}, made("SC-202"))]], "Done."),
        (query, [[("delete_device_schedule", {"schedule_id": "SC-101"}, {"success": True})]], "Deleted."),
    )


def test_vague_earlier_reference_needs_to_say_which():
    assert _figure([_schedules("Delete the device schedule with the schedule id from earlier.")], "vague_earlier_reference")["count"] == 1
    good = _figure([_schedules("Delete the device schedule with the first schedule id you got.")], "vague_earlier_reference")
    assert good["count"] == 0 and good["total"] >= 1


def _one_turn(query: str, calls: list, summary: str = "Done.", category: str = "") -> Item:
    item = conversation((query, [calls], summary))
    item.category = category
    return item


def test_broken_word_order_in_a_user_message():
    bad = _one_turn('I\'d like to comment the on post with post id "PO-1".', [("comment_on_post", {"post_id": "PO-1"}, {"ok": True})])
    good = _one_turn('I\'d like to comment on the post with post id "PO-1".', [("comment_on_post", {"post_id": "PO-1"}, {"ok": True})])
    assert _figure([bad], "broken_word_order")["count"] == 1 and _figure([good], "broken_word_order")["count"] == 0


def test_a_time_zone_conversion_is_no_unit_conversion():
    call = [("convert_time_zone", {"start_time": "2025-07-10T11:30", "time_zone": "Asia/Tokyo"}, {"start_time": "2025-07-11T03:30"})]
    bad = _one_turn('What is that time zone in another unit for start time "2025-07-10T11:30"?', call)
    good = _one_turn('What time is "2025-07-10T11:30" in Asia/Tokyo time?', call)
    assert _figure([bad], "time_zone_as_unit")["count"] == 1
    assert _figure([good], "time_zone_as_unit") == {**_figure([good], "time_zone_as_unit"), "count": 0, "total": 1}


def test_a_summary_label_is_no_category_name():
    call = [("create_social_post", {"content": "Hi"}, {"post_id": "PO-1"})]
    bad = _one_turn("Post 'Hi'.", call, 'For the social: post id "PO-1".', category="social_media")
    good = _one_turn("Post 'Hi'.", call, 'For the social post: post id "PO-1".', category="social_media")
    assert _figure([bad], "category_label")["count"] == 1 and _figure([good], "category_label")["count"] == 0


def test_a_reply_to_a_split_request_takes_its_cue_from_the_request():
    """Read in the default run: 'The brightness percent is 75; please continue.' after a
    request that said which device; the reply itself refers to nothing."""

    def item(request: str) -> Item:
        made = lambda sid: {"schedule_id": sid, "device_id": "DV-1", "time": "07:00"}
        return conversation(
            (
                "Schedule the lamp for 07:00.",
                [[("create_device_schedule", {"device_id": "DV-1", "time": "07:00"}, made("SC-101"))]],
                "Done.",
            ),
            ("And the fan for 08:00.", [[("create_device_schedule", {"device_id": "DV-2", "time": "08:00"}, made("SC-202"))]], "Done."),
            (request, [], "Which reason should I give?"),
            (
                "The reason is tidying up; please continue.",
                [[("delete_device_schedule", {"schedule_id": "SC-101"}, {"success": True})]],
                "Deleted.",
            ),
        )

    assert _figure([item("Delete the device schedule with the first schedule id you got.")], "vague_earlier_reference")["count"] == 0
    assert _figure([item("Delete the device schedule with the schedule id from earlier.")], "vague_earlier_reference")["count"] == 1


def test_arguments_are_traced_once_and_each_sees_only_the_leaves_before_it():
    """Four rules read the traced arguments of an item: traced once, each source keeping the
    output leaves seen up to its call (a later output of the same turn is not a candidate)."""
    from magnet_lib.lint.rules import _norm, traced_arguments

    item = conversation(
        (
            "List the cart, remove the first dish, then list it again.",
            [
                [("list_cart", {}, {"items": [{"item_id": "IT-1"}, {"item_id": "IT-2"}]})],
                [("remove_from_cart", {"item_id": "IT-1"}, {"item_id": "IT-9"})],  # IT-9: seen after the call only
            ],
            "Removed IT-1.",
        ),
    )
    traced = traced_arguments(item)
    assert traced is traced_arguments(item)  # derived once
    (source,) = traced
    assert source.param == "item_id" and source.value == "IT-1"
    assert source.seen[(0, "item_id")] == {_norm("IT-1"), _norm("IT-2")}
    assert not any(_norm("IT-9") in vs for vs in source.seen.values())
