"""Incremental rebuild, in LLM mode against the local test server (issue 5, item 10).

Two user categories of spec-only tools; the pipeline runs up to ``sft_set``. Then one tool of
one category changes and the pipeline runs again:

- only that category's partitions (and the unpartitioned assets after them) are rewritten:
  the other category's files keep their bytes and modification times;
- inside the changed partition only the items whose inputs changed make new requests:
  episodes that do not offer the changed tool are answered from the response cache (proved
  by replaying them against a snapshot of the cache taken before the rerun: no request), and
  the rerun's forth-translation requests are exactly those of the episodes that offer it.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import polars as pl
import pytest

from magnet_assets.orchestrate import run_pipeline
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import AugmentedFSP, Episode, Tool
from magnet_lib.settings import LLMSettings, load_settings
from magnet_lib.tables import from_frame
from magnet_lib.testing.server import TestServer
from magnet_lib.translation.episodes import translate

pytestmark = pytest.mark.slow


def _fn(name, description, params, required, response, tool_class):
    return {"type": "function", "function": {
        "name": name, "description": description, "tool_class": tool_class,
        "parameters": {"type": "object", "properties": params, "required": required},
        "response": {"type": "object", "properties": response},
    }}  # fmt: skip


def _s(description, kind="string", **extra):
    return {"type": kind, "description": description, **extra}


HARBOUR = {"harbours": {"type": "array", "items": {"type": "object", "properties": {"harbour_id": _s("Harbour id."), "name": _s("Name.")}}}}


def marine(convert_description: str = "Convert a length between feet and metres.") -> list[dict]:
    return [
        _fn("find_harbour", "Find harbours by name.", {"query": _s("Name to look for.", examples=["Porto", "Brest"])}, ["query"], HARBOUR, "Harbours"),
        _fn("get_tide_height", "Tide height at a harbour, in feet.", {"harbour_id": _s("Harbour id.")}, ["harbour_id"],
            {"height": _s("Height.", "number"), "unit": _s("Unit.", enum=["feet"])}, "Tides"),
        _fn("convert_length", convert_description,
            {"value": _s("Length.", "number"), "from_unit": _s("From.", enum=["feet", "metres"]), "to_unit": _s("To.", enum=["feet", "metres"])},
            ["value", "from_unit", "to_unit"], {"value": _s("Converted.", "number")}, "Units"),
        _fn("get_harbour_weather", "Current wind and wave conditions at a harbour.", {"harbour_id": _s("Harbour id.")}, ["harbour_id"],
            {"wind_knots": _s("Wind.", "number"), "wave_m": _s("Waves.", "number")}, "Weather"),
        _fn("book_mooring", "Book a mooring at a harbour for a boat.",
            {"harbour_id": _s("Harbour id."), "boat_name": _s("Boat.", examples=["Seagull", "Aurora"])}, ["harbour_id", "boat_name"],
            {"booking_id": _s("Booking id."), "harbour_id": _s("Harbour id.")}, "Moorings"),
        _fn("get_mooring_booking", "Details of a mooring booking.", {"booking_id": _s("Booking id.")}, ["booking_id"],
            {"booking_id": _s("Booking id."), "boat_name": _s("Boat."), "status": _s("Status.", enum=["confirmed", "waitlisted"])}, "Moorings"),
    ]  # fmt: skip


ORCHARD = [
    _fn("list_orchard_trees", "List the trees of an orchard row.", {"row": _s("Row number.", "integer")}, ["row"],
        {"trees": {"type": "array", "items": {"type": "object", "properties": {"tree_id": _s("Tree id."), "variety": _s("Variety.")}}}}, "Trees"),
    _fn("get_tree_health", "Health of one tree.", {"tree_id": _s("Tree id.")}, ["tree_id"], {"score": _s("Score.", "number"), "tree_id": _s("Tree id.")}, "Trees"),
    _fn("schedule_pruning", "Schedule the pruning of a tree.", {"tree_id": _s("Tree id."), "date": _s("Date.", format="date")}, ["tree_id", "date"],
        {"job_id": _s("Job id."), "tree_id": _s("Tree id.")}, "Jobs"),
    _fn("get_pruning_job", "Status of a pruning job.", {"job_id": _s("Job id.")}, ["job_id"], {"job_id": _s("Job id."), "status": _s("Status.")}, "Jobs"),
]  # fmt: skip

CHANGED_TOOL = "convert_length"


def _files(storage):
    return {
        str(p.relative_to(storage)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(storage.rglob("*.parquet"))
    }


def _runner(server: TestServer, cache_dir) -> TaskRunner:
    llm = LLMSettings(model="openai/test", api_base=server.url, api_key="sk-test", timeout_s=5.0)
    return TaskRunner(llm, cache_dir=cache_dir, backoff_base_s=0.02, backoff_max_s=0.2)


def test_changing_one_tool_rebuilds_one_category_and_only_the_items_it_feeds(magnet_home, monkeypatch, tmp_path):
    tools_dir = magnet_home.parent / "tools"
    (tools_dir / "marine").mkdir(parents=True)
    (tools_dir / "orchard").mkdir(parents=True)
    (tools_dir / "marine" / "marine.json").write_text(json.dumps(marine()))
    (tools_dir / "orchard" / "orchard.json").write_text(json.dumps(ORCHARD))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    # the test model answers from the prompts rendered in this process (its registry): the runs' steps stay here
    monkeypatch.setenv("MAGNET_RUN_EXECUTOR", "in_process")
    # no distractor tools: an episode offers only its walk's functions, so some never offer the changed one
    monkeypatch.setenv("MAGNET_DISTILL_DISTRACTORS", "0")
    with TestServer() as server:
        monkeypatch.setenv("MAGNET_LLM_MODEL", "openai/test")
        monkeypatch.setenv("MAGNET_LLM_API_BASE", server.url)
        monkeypatch.setenv("MAGNET_LLM_API_KEY", "sk-test")
        settings = load_settings(home=magnet_home, tools_dir=tools_dir)
        storage = settings.storage_dir

        first = run_pipeline(settings, assets=["sft_set"])
        assert not first.failed, [(s.asset, s.partition, s.error) for s in first.failed]
        first_requests = dict(server.by_task)
        assert first_requests.get("forth_translate", 0) > 0
        before = _files(storage)
        episodes_before = {e.episode_id: e for e in from_frame(pl.read_parquet(storage / "query_call_pairs" / "marine.parquet"), Episode)}
        snapshot = tmp_path / "cache-before"
        shutil.copytree(settings.cache_dir, snapshot)

        (tools_dir / "marine" / "marine.json").write_text(json.dumps(marine("Convert a length from feet to metres or back.")))
        server.reset_counts()
        second = run_pipeline(settings, assets=["sft_set"])
        assert not second.failed
        rerun_requests = dict(server.by_task)

    # only marine's partitions and the unpartitioned tail were materialized and rewritten
    partitions = {s.partition for s in second.materialized()}
    assert partitions == {"marine", None}
    after = _files(storage)
    for path, (digest, mtime) in before.items():
        if "orchard" in path:
            assert after[path] == (digest, mtime), f"{path} was rewritten"
    assert after["function_pool/marine.parquet"][0] != before["function_pool/marine.parquet"][0]
    assert after["sft_set.parquet"][1] != before["sft_set.parquet"][1]

    # inside marine: the walks did not change (the change is to a description), so every
    # episode is an item of both runs; those that do not offer the changed tool hit the cache
    fsps = from_frame(pl.read_parquet(storage / "augmented_fsps" / "marine.parquet"), AugmentedFSP)
    episodes_after = {e.episode_id: e for e in from_frame(pl.read_parquet(storage / "query_call_pairs" / "marine.parquet"), Episode)}
    assert set(episodes_after) == set(episodes_before)
    affected = {e.fsp_id for e in episodes_after.values() if CHANGED_TOOL in e.tools}
    assert affected and len(affected) < len(fsps)
    for episode_id, episode in episodes_after.items():
        if episode.fsp_id not in affected:
            assert episode == episodes_before[episode_id]
    tools = from_frame(pl.read_parquet(storage / "function_pool" / "marine.parquet"), Tool)
    with TestServer() as replay:
        unaffected = [f for f in fsps if f.fsp_id not in affected]
        translate(unaffected, tools, settings, _runner(replay, snapshot))
        assert replay.requests == 0, "an episode that does not offer the changed tool needed a new request"
        translate([f for f in fsps if f.fsp_id in affected], tools, settings, _runner(replay, snapshot))
        expected_forth = replay.by_task.get("forth_translate", 0)
    assert 0 < rerun_requests.get("forth_translate", 0) == expected_forth
    assert sum(rerun_requests.values()) < sum(first_requests.values())
