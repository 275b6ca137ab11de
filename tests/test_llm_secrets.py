"""The API key reaches the endpoint and nothing else: not the logs, the cache, the results,
the metadata, error messages or the environment."""

from __future__ import annotations

import json
import logging
import os
import uuid

from magnet_lib.llm import TaskRunner
from magnet_lib.llm.client import scrub
from magnet_lib.settings import LLMSettings, load_settings
from magnet_lib.testing.server import TestServer
from tests.llm_server import TEST_MODEL, make_echo, words


def assert_key_nowhere(canary, home, results, runner, settings, capfd) -> None:
    """The key is in no file of the home (the response cache included), no result, metadata,
    public settings, standard output or error, and no environment variable but its own."""
    written = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in written)
    for path in written:
        assert canary.encode() not in path.read_bytes(), f"key written to {path}"
    outputs = json.dumps([r.model_dump(mode="json") for r in results]) + json.dumps(runner.metadata())
    outputs += json.dumps(settings.public_dict(), default=str) + repr(settings.llm)
    assert canary not in outputs
    out, err = capfd.readouterr()
    assert canary not in out + err
    assert canary not in "".join(f"{k}={v}" for k, v in os.environ.items() if k != "MAGNET_LLM_API_KEY")


def test_canary_key_is_sent_but_never_written(tmp_path, monkeypatch, caplog, capfd):
    canary = f"sk-canary-{uuid.uuid4()}"
    home = tmp_path / "home"
    monkeypatch.setenv("MAGNET_HOME", str(home))
    monkeypatch.setenv("MAGNET_LLM_API_KEY", canary)  # the key comes from the environment only
    monkeypatch.setenv("MAGNET_LLM_MODEL", TEST_MODEL)
    caplog.set_level(logging.DEBUG)
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "magnet.llm", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    echo = make_echo(tmp_path / "prompts")

    with TestServer(retry_after_s=0.05) as server:
        monkeypatch.setenv("MAGNET_LLM_API_BASE", server.url)
        settings = load_settings()
        assert settings.llm.api_key.get_secret_value() == canary
        runner = TaskRunner(settings.llm.model_copy(update={"max_retries": 1, "max_reasks": 0}), cache_dir=settings.cache_dir)
        # successes, retried faults, and failures that end as rejects: every path that writes
        server.script("rate_limit", "server_error", "malformed", "server_error", "invalid_answer")
        results = runner.run(echo, words(6))
        results += runner.run(echo, words(6))  # cache hits
        bad_base = runner.settings.model_copy(update={"api_base": "http://127.0.0.1:9/v1", "max_retries": 0})
        results += TaskRunner(bad_base, cache_dir=settings.cache_dir).run(make_echo(tmp_path / "p2", "other"), words(1))

    assert f"Bearer {canary}" in server.authorizations  # the endpoint did get the key
    assert any(r.ok for r in results) and any(not r.ok for r in results)

    assert_key_nowhere(canary, home, results, runner, settings, capfd)
    assert "retrying" in caplog.text  # the logs were captured (at DEBUG) and searched
    assert canary not in caplog.text


def test_scrub_masks_the_key_and_bearer_tokens():
    text = "401 for key sk-canary-1234567890abcdef, header Authorization: Bearer abc.def.ghi"
    cleaned = scrub(text, "sk-canary-1234567890abcdef")
    assert "sk-canary" not in cleaned and "abc.def.ghi" not in cleaned
    assert scrub("key-like sk-proj-ABCDEFGHIJKLMNOP leaks", None) == "key-like *** leaks"


def test_errors_carry_no_key(tmp_path):
    canary = f"sk-canary-{uuid.uuid4()}"
    settings = LLMSettings(model=TEST_MODEL, api_base="http://127.0.0.1:9/v1", api_key=canary, max_retries=0)
    [result] = TaskRunner(settings, cache_dir=tmp_path).run(make_echo(tmp_path / "p"), words(1))
    assert result.reject_reason and canary not in result.reject_reason


def test_canary_key_never_reaches_dagster_storage_or_metadata(tmp_path, monkeypatch):
    """A materialization in LLM mode through Dagster: the run storage, event log, asset
    metadata and every file under the home are searched for the key."""
    import dagster as dg

    from magnet_assets.definitions import build_definitions

    canary = f"sk-canary-{uuid.uuid4()}"
    home = tmp_path / "home"
    for var in ("MAGNET_TOOLS_DIR", "MAGNET_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MAGNET_HOME", str(home))
    monkeypatch.setenv("MAGNET_LLM_API_KEY", canary)
    monkeypatch.setenv("MAGNET_LLM_MODEL", TEST_MODEL)
    (tmp_path / "dagster").mkdir()
    with TestServer() as server, dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        monkeypatch.setenv("MAGNET_LLM_API_BASE", server.url)
        defs = build_definitions(home=str(home))
        instance.add_dynamic_partitions("category", ["navigation"])
        job = defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            instance=instance,
            partition_key="navigation",
            asset_selection=[dg.AssetKey(k) for k in ("function_pool", "tool_rejects", "dependency_edges")],
        )
        assert result.success
        assert server.by_task.get("judge_dependencies", 0) > 0  # the model was really asked
    assert f"Bearer {canary}" in server.authorizations

    metadata = [repr(e.event_specific_data.materialization.metadata) for e in result.get_asset_materialization_events()]
    assert any("llm/calls" in m for m in metadata)
    assert canary not in "".join(metadata) + repr(instance.get_run_by_id(result.run_id))
    assert any(p.suffix == ".db" for p in (tmp_path / "dagster").rglob("*"))  # run and event storage
    for root in (home, tmp_path / "dagster"):
        for path in (p for p in root.rglob("*") if p.is_file()):
            assert canary.encode() not in path.read_bytes(), f"key written to {path}"


def test_canary_key_in_anthropic_batch_mode_is_sent_but_never_written(tmp_path, monkeypatch, caplog, capfd):
    """Anthropic's batch mode: the key travels in the ``x-api-key`` header of every control call
    (create, poll, download) and nowhere else, through faults, rejects and cache hits."""
    canary = f"sk-ant-canary-{uuid.uuid4()}"
    home = tmp_path / "home"
    monkeypatch.setenv("MAGNET_HOME", str(home))
    monkeypatch.setenv("MAGNET_LLM_API_KEY", canary)
    monkeypatch.setenv("MAGNET_LLM_MODEL", "anthropic/claude-haiku-4-5")
    monkeypatch.setenv("MAGNET_LLM_BATCH", "true")
    caplog.set_level(logging.DEBUG)
    for name in ("magnet.llm", "aiohttp", "aiohttp.client", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    echo = make_echo(tmp_path / "prompts")
    with TestServer(retry_after_s=0.05, batch_latency_s=0.05) as server:
        monkeypatch.setenv("MAGNET_LLM_API_BASE", server.root)
        settings = load_settings()
        assert settings.llm.batch and settings.llm.api_key.get_secret_value() == canary
        llm = settings.llm.model_copy(update={"max_retries": 1, "max_reasks": 0, "batch_window_s": 0.05, "batch_poll_s": 0.02})
        runner = TaskRunner(llm, cache_dir=settings.cache_dir)
        server.script("rate_limit", "overloaded", "hang", "invalid_request", "malformed", "overloaded", "invalid_answer")
        results = runner.run(echo, words(6))
        results += runner.run(echo, words(6))  # cache hits
        assert server.message_batches and server.requests >= 6
    assert server.api_keys == {canary}  # the endpoint got the key, in x-api-key
    assert any(r.ok for r in results) and any(not r.ok for r in results)
    assert_key_nowhere(canary, home, results, runner, settings, capfd)
    assert "anthropic batch" in caplog.text and "retrying" in caplog.text  # the logs were captured and searched
    assert canary not in caplog.text
