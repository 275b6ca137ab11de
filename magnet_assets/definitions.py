"""The Dagster definitions of Magnet: every stage module's assets, checks and sensors.

Loaded by ``workspace.yaml`` (``dagster dev``) and by the ``magnet`` CLI.
"""

from __future__ import annotations

import importlib

import dagster as dg

from magnet_assets.io_manager import PolarsParquetIOManager
from magnet_assets.resources import MagnetResource
from magnet_lib.settings import load_settings

# Stage modules in pipeline order; each holds the assets named after what they produce.
STAGE_MODULES = ["sources", "pool", "graph", "translation", "training", "evaluation", "bfcl"]


def _stage_modules() -> list:
    modules = []
    for name in STAGE_MODULES:
        qualified = f"magnet_assets.{name}"
        try:
            modules.append(importlib.import_module(qualified))
        except ModuleNotFoundError as exc:  # a stage not built yet; any other import error is real
            if exc.name != qualified:
                raise
    return modules


def build_definitions(home: str | None = None, tools_dir: str | None = None) -> dg.Definitions:
    """Definitions over one Magnet home (tests pass a temporary one)."""
    modules = _stage_modules()
    settings = load_settings(**({"home": home} if home else {}))
    sensors = [obj for m in modules for obj in vars(m).values() if isinstance(obj, dg.SensorDefinition)]
    return dg.Definitions(
        assets=dg.load_assets_from_modules(modules),
        asset_checks=dg.load_asset_checks_from_modules(modules),
        sensors=sensors,
        resources={
            "magnet": MagnetResource(home=home, tools_dir=tools_dir),
            "io_manager": PolarsParquetIOManager(base_dir=str(settings.storage_dir.resolve())),
        },
    )


defs = build_definitions()
