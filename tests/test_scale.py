"""Scale on request: ``target_items`` sizes the walks from the pool, the default stays laptop-sized."""

from __future__ import annotations

import math

import pytest

from magnet_lib.settings import load_settings


def test_without_a_target_the_walks_per_node_setting_holds(monkeypatch):
    monkeypatch.delenv("MAGNET_TARGET_ITEMS", raising=False)
    settings = load_settings()
    assert settings.target_items is None and settings.walks_for(180) == settings.graph.walks_per_node == 1
    assert load_settings(graph={"walks_per_node": 3}).walks_for(180) == 3


def test_a_target_sets_the_walks_from_the_pool_size(monkeypatch):
    monkeypatch.setenv("MAGNET_TARGET_ITEMS", "34000")  # the paper's size, read like any setting
    settings = load_settings()
    d, g = settings.distill, settings.graph
    share = d.mix_multi / (d.mix_single + d.mix_multi + d.mix_irrelevance)
    assert settings.target_items == 34000
    assert settings.walks_for(180) == math.ceil(34000 * share / (180 * g.multi_turn_per_walk))
    # the multi-turn items it asks for cover the target's multi-turn share
    assert settings.walks_for(180) * 180 * g.multi_turn_per_walk >= 34000 * share
    assert settings.walks_for(5000) < settings.walks_for(180)  # a bigger pool needs fewer walks per node
    assert load_settings(target_items=10).walks_for(180) == 1  # never fewer than one walk per node
    with pytest.raises(ValueError):
        load_settings(target_items=0)


def test_the_fsps_asset_walks_as_the_target_asks(dagster_harness, monkeypatch):
    """fsps reads target_items: more walks per start node, recorded in its metadata."""
    from magnet_lib.models import FSP
    from magnet_lib.tables import from_frame

    h = dagster_harness
    h.add_categories("navigation")
    assert h.materialize("function_pool", "tool_rejects", "dependency_edges", "dependency_graph", partition="navigation").success
    first = h.materialize("fsps", partition="navigation")
    assert first.asset_materializations_for_node("fsps")[0].metadata["walks_per_node"].value == 1
    one = from_frame(h.table("fsps", "navigation"), FSP)
    monkeypatch.setenv("MAGNET_TARGET_ITEMS", "200")
    wanted = load_settings().walks_for(12)
    assert wanted > 1
    run = h.materialize("fsps", partition="navigation")
    assert run.asset_materializations_for_node("fsps")[0].metadata["walks_per_node"].value == wanted
    many = from_frame(h.table("fsps", "navigation"), FSP)
    assert len(many) > len(one) and {w.start for w in many} >= {w.start for w in one}
