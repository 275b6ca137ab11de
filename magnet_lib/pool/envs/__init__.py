"""Built-in executable environments, one module per category.

Every module of this package that defines a :class:`ToolEnvironment` subclass with a
``category`` is discovered; adding a category is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from magnet_lib.pool.envs.base import (
    ToolEnvironment,
    ToolError,
    error_output,
    is_error,
    stable_pickles,
    tool,
)

__all__ = ["ToolEnvironment", "ToolError", "error_output", "is_error", "tool", "builtin_environments"]


@cache
def builtin_environments() -> dict[str, type[ToolEnvironment]]:
    """Category name -> environment class, for every built-in category."""
    found: dict[str, type[ToolEnvironment]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        stable_pickles(module)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, ToolEnvironment)
                and obj is not ToolEnvironment
                and obj.__module__ == module.__name__
                and getattr(obj, "category", None)
            ):
                if obj.category in found:
                    raise TypeError(f"category '{obj.category}' defined twice: {found[obj.category]} and {obj}")
                found[obj.category] = obj
    return found
