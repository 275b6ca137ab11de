"""``magnet export`` in the three formats; the hf export trains one TRL SFTTrainer step."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from magnet_lib.distillation.export import bfcl_record, sharegpt_record
from magnet_lib.distillation.mixing import SFTExample, build_sft_set
from magnet_lib.distillation.single_turn import item_counts, make_single_turn
from magnet_lib.distillation.teacher import distill
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import Episode
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.settings import load_settings
from magnet_lib.tables import to_frame
from magnet_lib.translation.episodes import translate
from tests.translation_fixtures import navigation_fsps


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A Magnet home holding an sft_set and query_call_pairs built offline."""
    home = tmp_path_factory.mktemp("home")
    settings = load_settings(home=home)
    tools = builtin_environments()["navigation"].tools()
    runner = TaskRunner(settings.llm)
    episodes = translate(navigation_fsps(), tools, settings, runner)
    multi = [r.trajectory for r in distill(episodes, tools, runner) if r.trajectory]
    singles, _ = make_single_turn(tools, item_counts(len(multi), settings), settings, runner)
    rows, _ = build_sft_set(multi + singles, settings.distill.model_copy(update={"heldout_fraction": 0.0}))
    (home / "storage" / "query_call_pairs").mkdir(parents=True)
    to_frame(rows, SFTExample).write_parquet(home / "storage" / "sft_set.parquet")
    to_frame(episodes, Episode).write_parquet(home / "storage" / "query_call_pairs" / "navigation.parquet")
    return home, rows


def _export(home, fmt, out, *extra):
    from magnet_assets.cli import app

    result = CliRunner().invoke(app, ["export", "--format", fmt, "--out", str(out), "--home", str(home), *extra])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file()
    return result


def test_hf_export_loads_with_datasets_and_trains_one_sft_step(home, tmp_path):
    import datasets
    from trl import SFTConfig, SFTTrainer

    from magnet_lib.training.base_models import TinySpec, build_tiny

    home, rows = home
    out = tmp_path / "hf"
    _export(home, "hf", out)
    train = datasets.load_from_disk(str(out / "dataset"))["train"]
    assert len(train) == sum(r.split == "train" for r in rows)
    example = next(e for e in train if e["kind"] == "multi_turn")
    call = next(m for m in example["messages"] if m.get("tool_calls"))["tool_calls"][0]
    assert isinstance(call["function"]["arguments"], dict)  # HF templates write arguments with tojson
    assert json.loads(example["tools"])[0]["type"] == "function"
    report = (out / "report.md").read_text()
    assert "calls per item" in report and "(100.00%)" in report and "**assistant** (calls)" in report

    conversations = [{"messages": e["messages"], "tools": json.loads(e["tools"])} for e in train]
    model, tokenizer = build_tiny(conversations, TinySpec(vocab_size=1024, hidden_size=32, intermediate_size=64))
    config = SFTConfig(
        output_dir=str(tmp_path / "ckpt"), max_steps=1, per_device_train_batch_size=2, report_to=[], save_strategy="no",
        assistant_only_loss=True, max_length=4096, logging_steps=1, use_cpu=True, dataloader_num_workers=0,
    )  # fmt: skip
    trainer = SFTTrainer(model=model, args=config, train_dataset=train.select_columns(["messages", "tools"]), processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0


def test_sharegpt_and_bfcl_exports(home, tmp_path):
    home, rows = home
    _export(home, "sharegpt", tmp_path / "sg")
    info = json.loads((tmp_path / "sg" / "dataset_info.json").read_text())
    assert info["magnet_train"]["formatting"] == "sharegpt"
    records = json.loads((tmp_path / "sg" / "magnet_train.json").read_text())
    for record in records:
        roles = [c["from"] for c in record["conversations"]]
        # LLaMA-Factory: human/observation at odd positions, gpt/function_call at even ones
        assert all(r in ("human", "observation") for r in roles[0::2]) and all(r in ("gpt", "function_call") for r in roles[1::2])
    _export(home, "bfcl", tmp_path / "bfcl")
    multi = [json.loads(line) for line in (tmp_path / "bfcl" / "multi_turn_train.jsonl").read_text().splitlines()]
    assert multi and all(len(m["question"]) == len(m["ground_truth"]) for m in multi)
    assert all(m["function"][0]["parameters"]["type"] == "dict" for m in multi)
    miss = next(m for m in multi if "missed_function" in m)
    [(turn, docs)] = miss["missed_function"].items()
    assert docs[0]["name"] == "save_place" and "save_place" not in [f["name"] for f in miss["function"]]
    assert any(call.startswith("save_place(") for call in miss["ground_truth"][int(turn)])


def test_record_converters_keep_every_call():
    settings = load_settings()
    tools = builtin_environments()["navigation"].tools()
    runner = TaskRunner(settings.llm)
    [nested] = [r.trajectory for r in distill(translate(navigation_fsps()[:1], tools, settings, runner), tools, runner)]
    row = SFTExample(**nested.model_dump())
    calls = sum(len(m.get("tool_calls") or []) for m in row.messages)
    assert sum(len(t) for t in bfcl_record(row)["ground_truth"]) == calls
    assert sum(1 for c in sharegpt_record(row)["conversations"] if c["from"] == "function_call") == calls  # one call per message here


def test_export_without_a_set_says_what_to_run(tmp_path):
    from magnet_assets.cli import app

    result = CliRunner().invoke(app, ["export", "--format", "hf", "--out", str(tmp_path / "x"), "--home", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "magnet run" in result.output
