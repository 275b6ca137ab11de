"""Resources: every Magnet setting as typed resource configuration, and the LLM task runner.

:class:`MagnetResource` has one typed field per knob of :class:`MagnetSettings` (the groups
``llm``, ``graph``, ``distill`` and ``train`` as nested config), so the Dagster launchpad
shows and sets any of them, and ``run_pipeline(settings)`` passes every field to the assets
as run configuration. The API key is not a field: it never enters run configuration (which
Dagster stores); it comes from the environment or the settings file as before.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Optional, get_args, get_origin

import dagster as dg
from pydantic import Field, SecretStr, create_model
from pydantic_settings import BaseSettings

from magnet_lib.llm.runner import TaskRunner
from magnet_lib.settings import MagnetSettings, load_settings

#: fields kept out of run configuration (secrets)
SECRET_FIELDS = {"llm": {"api_key"}}
#: the settings groups (llm, graph, distill, train, ...), read off MagnetSettings: a new group
#: reaches the resource and the launchpad by itself
GROUPS: dict[str, type[BaseSettings]] = {
    name: info.annotation
    for name, info in MagnetSettings.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseSettings)
}


def _config_type(annotation: Any) -> Any:
    """The Dagster config type of a settings field: paths and literal choices as strings (the
    settings model validates the value when the run loads it)."""
    if annotation is Path:
        return str
    if get_origin(annotation) is Literal:
        return type(get_args(annotation)[0])
    if get_origin(annotation) is not None and Path in get_args(annotation):
        return Optional[str]  # noqa: UP045 - Dagster's config schema reads typing.Optional
    return annotation


def _config_class(name: str, settings_cls: type, secret: set[str]) -> type[dg.Config]:
    fields = {}
    for field_name, info in settings_cls.model_fields.items():
        if field_name in secret or info.annotation is SecretStr:
            continue
        # None = take the value from the settings file / environment
        fields[field_name] = (Optional[_config_type(info.annotation)], Field(None, description=info.description))  # noqa: UP045
    return create_model(name, __base__=dg.Config, **fields)


#: one typed config class per group (``LlmConfig``, ``GraphConfig``, ...), the API key left out
CONFIGS: dict[str, type[dg.Config]] = {
    name: _config_class(f"{name.title()}Config", cls, SECRET_FIELDS.get(name, set())) for name, cls in GROUPS.items()
}


class _MagnetResourceBase(dg.ConfigurableResource):
    """Magnet settings for a run. A field left unset (None) takes the value of the settings
    file and environment; library code receives ``settings`` and never reads the environment."""

    home: Optional[str] = Field(None, description="Everything a run writes ($MAGNET_HOME).")  # noqa: UP045
    tools_dir: Optional[str] = Field(None, description="User tool specs, one sub-folder per category.")  # noqa: UP045
    builtin_tools: Optional[bool] = Field(None, description="Include the built-in executable environments.")  # noqa: UP045
    seed: Optional[int] = None  # noqa: UP045

    @classmethod
    def from_settings(cls, settings: MagnetSettings) -> MagnetResource:
        """Every field set from ``settings`` (what the launchpad shows as defaults)."""
        return cls(**resource_values(settings))

    @cached_property
    def settings(self) -> MagnetSettings:
        overrides: dict[str, Any] = {
            k: getattr(self, k) for k in ("home", "tools_dir", "builtin_tools", "seed") if getattr(self, k) is not None
        }
        for group in GROUPS:
            values = {k: v for k, v in getattr(self, group).model_dump().items() if v is not None}
            if values:  # the group's other fields (and the API key) come from the environment / file
                overrides[group] = GROUPS[group](**values)
        return load_settings(**overrides)

    def runner(self) -> TaskRunner:
        """A fresh task runner for one materialization (its accounting covers it); use it as
        a context manager (``with magnet.runner() as runner:``) so its cache is closed."""
        s = self.settings
        return TaskRunner(s.llm, cache_dir=s.cache_dir)


#: the resource: the scalar fields and methods above plus one nested config per settings group
MagnetResource = create_model(
    "MagnetResource",
    __base__=_MagnetResourceBase,
    __module__=__name__,
    __doc__=_MagnetResourceBase.__doc__,
    **{name: (config, Field(default_factory=config)) for name, config in CONFIGS.items()},
)


def resource_values(settings: MagnetSettings) -> dict[str, Any]:
    """The settings as MagnetResource field values (JSON-friendly, without the key); what
    ``run_pipeline`` passes on and what the launchpad shows."""
    data = settings.public_dict()
    out: dict[str, Any] = {k: data[k] for k in ("home", "tools_dir", "builtin_tools", "seed")}
    for group in GROUPS:
        # only the fields set (file, environment, code): a field left unset keeps its default
        # behaviour (e.g. the CPU profile of the tiny model fills unset training fields)
        given = getattr(settings, group).model_fields_set
        out[group] = {k: v for k, v in data[group].items() if k in given and k not in SECRET_FIELDS.get(group, set())}
    return out
