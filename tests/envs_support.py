"""Helpers for environment tests: call tools, check outputs against their response schema."""

from __future__ import annotations

from typing import Any

import jsonschema

from magnet_lib.pool.envs import ToolEnvironment, is_error


class ToolRecorder:
    """Calls tools of one environment instance and remembers which ones ran successfully."""

    def __init__(self, env: ToolEnvironment):
        self.env = env
        self.tools = {t.name: t for t in type(env).tools()}
        self.called: set[str] = set()

    def ok(self, name: str, **arguments: Any) -> dict[str, Any]:
        """Call with valid arguments: the call must succeed and match the response schema."""
        out = self.env.call(name, arguments)
        assert not is_error(out), f"{name}({arguments}) failed: {out}"
        jsonschema.validate(out, self.tools[name].response)
        self.called.add(name)
        return out

    def err(self, name: str, code: str | None = None, **arguments: Any) -> dict[str, Any]:
        """Call expecting a structured error (optionally with this code)."""
        out = self.env.call(name, arguments)
        assert is_error(out), f"{name}({arguments}) should fail, got {out}"
        if code is not None:
            assert out["error"]["code"] == code, out
        return out

    def assert_all_called(self) -> None:
        missing = sorted(set(self.tools) - self.called)
        assert not missing, f"{self.env.category}: tools never called successfully: {missing}"
