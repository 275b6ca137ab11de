import json

from magnet_lib.models import Tool
from magnet_lib.tables import from_frame


def test_tool_sources_and_function_pool_for_two_categories(dagster_harness):
    h = dagster_harness
    spec = [
        {
            "type": "function",
            "function": {
                "name": "lookup_tide",
                "description": "Tide height at a harbour.",
                "parameters": {
                    "type": "object",
                    "properties": {"harbour": {"type": "string", "description": "Harbour name."}},
                    "required": ["harbour"],
                },
                "response": {"type": "object", "properties": {"height_m": {"type": "number"}}},
            },
        }
    ]
    (h.tools_dir / "marine").mkdir()
    (h.tools_dir / "marine" / "tides.json").write_text(json.dumps(spec))
    h.add_categories("navigation", "marine")
    for category in ("navigation", "marine"):
        result = h.materialize("function_pool", "tool_rejects", partition=category)
        assert result.success
    nav = from_frame(h.table("function_pool", "navigation"), Tool)
    marine = from_frame(h.table("function_pool", "marine"), Tool)
    assert len(nav) >= 10 and all(t.executable and t.category == "navigation" for t in nav)
    assert [t.name for t in marine] == ["lookup_tide"] and not marine[0].executable
    assert h.table("tool_rejects", "marine").height == 0
