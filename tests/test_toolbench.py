"""ToolBench / StableToolBench RapidAPI tool files as spec-only tools of a category."""

import json

from magnet_lib.models import Call
from magnet_lib.pool.execution import make_runtime
from magnet_lib.pool.function_pool import load_category
from magnet_lib.pool.toolbench import standardize
from magnet_lib.settings import MagnetSettings

YOUTUBE = {
    "tool_name": "Youtube Search",
    "tool_description": "Search videos and channels on YouTube.",
    "title": "Youtube Search",
    "standardized_name": "youtube_search",
    "api_list": [
        {
            "name": "Search Videos",
            "url": "https://youtube-search.p.rapidapi.com/search",
            "description": "Find videos matching a query.",
            "method": "GET",
            "required_parameters": [{"name": "q", "type": "STRING", "description": "The query.", "default": "lofi beats"}],
            "optional_parameters": [
                {"name": "max_results", "type": "NUMBER", "description": "How many.", "default": 10},
                {"name": "published_after", "type": "DATE (YYYY-MM-DD)", "description": "Only newer videos.", "default": ""},
                {"name": "safe", "type": "BOOLEAN", "description": "Safe search.", "default": True},
            ],
            "schema": {"type": "object", "properties": {"video_id": {"type": "string"}, "title": {"type": "string"}}},
        },
        {"name": "2nd Channel Info", "description": "", "required_parameters": [{"name": "channel_id", "type": "STRING"}]},
        {"name": "", "description": "No name."},
        {"name": "Video Stats", "description": "Stats.", "required_parameters": [{"type": "STRING"}]},
        {"name": "Trending", "description": "Trending videos.", "optional_parameters": "region"},
    ],
}


def test_toolbench_file_loads_with_rejects(magnet_home, tmp_path, monkeypatch):
    folder = tmp_path / "tools" / "Media"
    folder.mkdir(parents=True)
    (folder / "youtube_search.json").write_text(json.dumps(YOUTUBE))
    (folder / "broken.json").write_text(json.dumps({"tool_name": "Broken", "api_list": {"name": "x"}}))
    monkeypatch.setenv("MAGNET_TOOLS_DIR", str(tmp_path / "tools"))
    part = load_category(MagnetSettings(builtin_tools=False), "Media")
    tools = {t.name: t for t in part.tools}
    assert set(tools) == {"search_videos_for_youtube_search", "get_2nd_channel_info_for_youtube_search"}
    search = tools["search_videos_for_youtube_search"]
    assert not search.executable and search.tool_class == "Youtube Search" and search.category == "Media"
    assert search.parameters["required"] == ["q"]
    props = search.parameters["properties"]
    assert props["q"] == {"type": "string", "description": "The query.", "examples": ["lofi beats"]}
    assert props["max_results"]["type"] == "number" and props["safe"]["type"] == "boolean"
    assert props["published_after"] == {"type": "string", "description": "Only newer videos."}
    assert set(search.response["properties"]) == {"video_id", "title"}
    assert "Youtube Search" in tools["get_2nd_channel_info_for_youtube_search"].description  # empty description filled in
    rejects = {(r.file.rsplit("/", 1)[-1], r.tool, r.field) for r in part.rejects}
    assert rejects == {
        ("youtube_search.json", "Youtube Search", "api_list.2.name"),
        ("youtube_search.json", "video_stats_for_youtube_search", "api_list.3.required_parameters.0"),
        ("youtube_search.json", "trending_for_youtube_search", "api_list.4.optional_parameters"),
        ("broken.json", "Broken", "api_list"),
    }
    # spec-only: simulated, following the response schema
    output = make_runtime(part.tools, seed=1).execute(Call(name="search_videos_for_youtube_search", arguments={"q": "jazz"}))
    assert set(output) <= {"video_id", "title"} and output


def test_standardize_follows_toolbench():
    assert standardize("Get Weather (v2)!") == "get_weather_v2"
    assert standardize("3D Models") == "get_3d_models"
