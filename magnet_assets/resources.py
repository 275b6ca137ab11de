"""Resources: the settings object and the LLM task runner, built once per run."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from magnet_lib.llm.runner import TaskRunner
from magnet_lib.settings import MagnetSettings, load_settings


class MagnetResource(dg.ConfigurableResource):
    """Magnet settings for a run: the settings file + environment, with optional overrides.

    ``home`` and ``tools_dir`` override the environment when set (tests point them at a
    temporary folder). Library code receives ``settings`` and never reads the environment.
    """

    home: str | None = None
    tools_dir: str | None = None

    @cached_property
    def settings(self) -> MagnetSettings:
        overrides = {}
        if self.home:
            overrides["home"] = self.home
        if self.tools_dir:
            overrides["tools_dir"] = self.tools_dir
        return load_settings(**overrides)

    def runner(self) -> TaskRunner:
        """A fresh task runner (its accounting covers one materialization)."""
        s = self.settings
        return TaskRunner(s.llm, cache_dir=s.cache_dir)
