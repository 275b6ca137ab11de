"""Shared fixtures: an isolated Magnet home and in-process Dagster materialization."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest


@dataclass
class DagsterHarness:
    """Materialize assets in process over a temporary Magnet home."""

    home: Path
    tools_dir: Path | None
    instance: dg.DagsterInstance
    defs: dg.Definitions

    def add_categories(self, *categories: str) -> None:
        self.instance.add_dynamic_partitions("category", list(categories))

    def materialize(self, *asset_names: str, partition: str | None = None) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            instance=self.instance,
            partition_key=partition,
            asset_selection=[dg.AssetKey(n) for n in asset_names],
        )

    def table(self, asset: str, partition: str | None = None) -> pl.DataFrame:
        path = self.home / "storage" / (f"{asset}/{partition}.parquet" if partition else f"{asset}.parquet")
        return pl.read_parquet(path)


@pytest.fixture
def magnet_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MAGNET_HOME", str(home))
    for var in ("MAGNET_LLM_MODEL", "MAGNET_LLM_API_BASE", "MAGNET_LLM_API_KEY", "MAGNET_TOOLS_DIR", "MAGNET_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def dagster_harness(magnet_home) -> DagsterHarness:
    from magnet_assets.definitions import build_definitions

    tools_dir = magnet_home.parent / "tools"
    tools_dir.mkdir(exist_ok=True)
    defs = build_definitions(home=str(magnet_home), tools_dir=str(tools_dir))
    with dg.instance_for_test() as instance:
        yield DagsterHarness(home=magnet_home, tools_dir=tools_dir, instance=instance, defs=defs)
