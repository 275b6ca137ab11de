"""Contract every built-in environment keeps (whatever its category)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from magnet_lib.pool.envs import builtin_environments

ENVS = builtin_environments()


def test_pool_size():
    tools = [t for env in ENVS.values() for t in env.tools()]
    names = [t.name for t in tools]
    assert len(names) == len(set(names)), "tool names must be unique across categories"
    assert len(ENVS) >= 10 and len(tools) >= 150, (len(ENVS), len(tools))


@pytest.mark.parametrize("category", sorted(ENVS))
def test_schemas_are_valid_and_labelled(category):
    env_cls = ENVS[category]
    for t in env_cls.tools():
        jsonschema.Draft202012Validator.check_schema(t.parameters)
        jsonschema.Draft202012Validator.check_schema(t.response)
        assert t.parameters["type"] == "object"
        assert set(t.required) <= set(t.properties)
        assert t.tool_class and t.description and t.category == category
        assert all(p.get("description") for p in t.properties.values()), t.name


@pytest.mark.parametrize("category", sorted(ENVS))
def test_same_seed_same_world(category):
    env_cls = ENVS[category]
    a, b, c = env_cls(seed=7), env_cls(seed=7), env_cls(seed=8)
    assert json.dumps(a.state(), sort_keys=True) == json.dumps(b.state(), sort_keys=True)
    assert json.dumps(a.state(), sort_keys=True) != json.dumps(c.state(), sort_keys=True)


@pytest.mark.parametrize("category", sorted(ENVS))
def test_every_required_value_has_a_source(category):
    """A required parameter is filled from an earlier output, an enum, or a user value."""
    env_cls = ENVS[category]
    tools = env_cls.tools()
    output_fields: set[str] = set()

    def collect(schema):
        for name, sub in schema.get("properties", {}).items():
            output_fields.add(name)
            collect(sub)
        if "items" in schema:
            collect(schema["items"])

    for t in tools:
        collect(t.response)
    user_values = env_cls(seed=0).user_values()
    for t in tools:
        for name in t.required:
            prop = t.properties[name]
            assert name in output_fields or "enum" in prop or user_values.get(name), (
                f"{t.name}.{name}: no output provides it, no enum, no user_values entry"
            )


@pytest.mark.parametrize("category", sorted(ENVS))
def test_unknown_function_and_bad_arguments_are_errors(category):
    env = ENVS[category](seed=0)
    assert env.call("no_such_function", {})["error"]["code"] == "unknown_function"
    some_tool = env.tools()[0]
    out = env.call(some_tool.name, {"definitely_not_a_parameter": 1})
    assert out["error"]["code"] == "invalid_arguments"
