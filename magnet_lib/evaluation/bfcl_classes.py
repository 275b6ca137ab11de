"""Magnet's built-in environments as BFCL executable classes, so that bfcl-eval's own
multi-turn checker can run an exported entry (``magnet export --format bfcl``).

BFCL's checker builds each class of an entry's ``involved_classes`` with no argument, loads
its ``initial_config`` entry with ``_load_scenario``, runs the call strings of each turn on it
and compares the public attributes of the model's and the ground truth's instances, and the
outputs. Here a class per built-in category (named after its environment class, e.g.
``NavigationEnv``) has one public method per tool; its scenario is the episode's seed (a
built-in world is a function of its seed), and its public ``state`` is the environment's
state after every call. :func:`register` tells bfcl-eval where the classes (and, for an
export folder, their function docs) are; nothing of bfcl-eval is changed but those two tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from magnet_lib.pool.envs import builtin_environments
from magnet_lib.pool.envs.base import ToolEnvironment


class BfclEnvironment:
    """The BFCL face of a built-in environment: ``_load_scenario({'seed': n})`` then one
    method per tool; ``state`` is what BFCL's state check compares."""

    environment: ClassVar[type[ToolEnvironment]]

    def __init__(self) -> None:
        self._load_scenario({})

    def _load_scenario(self, scenario: dict[str, Any], long_context: bool = False) -> None:
        self._env = self.environment(seed=int(scenario.get("seed", 0)))
        self.state = self._env.state()

    def _call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        output = self._env.call(name, arguments)
        self.state = self._env.state()
        return output


def _method(name: str):
    def method(self: BfclEnvironment, **arguments: Any) -> dict[str, Any]:
        return self._call(name, arguments)

    method.__name__ = method.__qualname__ = name
    return method


#: class name -> BFCL class, one per built-in category
CLASSES: dict[str, type[BfclEnvironment]] = {}
#: built-in category -> its BFCL class name
CLASS_OF_CATEGORY: dict[str, str] = {}
for _category, _env in builtin_environments().items():
    _cls = type(
        _env.__name__, (BfclEnvironment,), {"environment": _env, "__module__": __name__, **{n: _method(n) for n in _env.tool_specs()}}
    )
    CLASSES[_env.__name__] = _cls
    CLASS_OF_CATEGORY[_category] = _env.__name__
    globals()[_env.__name__] = _cls


def register(doc_dir: Path | None = None) -> list[str]:
    """Make bfcl-eval find the classes (its executable backend table) and, with ``doc_dir`` (an
    export's ``multi_turn_func_doc`` folder), their function docs (its doc file table), so that
    its loader and checkers read an exported entry as one of their own. Returns the names."""
    from bfcl_eval.constants import executable_backend_config as backend

    for name in CLASSES:
        backend.CLASS_FILE_PATH_MAPPING[name] = __name__
        if doc_dir is not None and (Path(doc_dir) / f"{name}.json").is_file():
            backend.MULTI_TURN_FUNC_DOC_FILE_MAPPING[name] = str((Path(doc_dir) / f"{name}.json").resolve())
    return sorted(CLASSES)
