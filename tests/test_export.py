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


def test_bfcl_export_is_read_and_scored_by_bfcl_eval(home, tmp_path):
    """The exported entries in BFCL's own format: bfcl-eval's loader reads them (function docs
    from the export's doc files), its multi-turn checker runs the ground truth against itself
    on the built-in classes (valid), and a wrong call fails it; its AST checker accepts each
    single-turn ground truth."""
    pytest.importorskip("bfcl_eval")
    from magnet_lib.evaluation.bfcl import _bfcl
    from magnet_lib.evaluation.bfcl_classes import register

    home, rows = home
    out = tmp_path / "bfcl"
    _export(home, "bfcl", out)
    b = _bfcl()
    register(out / "multi_turn_func_doc")
    entries = b.utils.load_file(out / "BFCL_v4_magnet_multi_turn_train.json")
    answers = {a["id"]: a for a in b.utils.load_file(out / "possible_answer" / "BFCL_v4_magnet_multi_turn_train.json")}
    assert entries and set(entries[0]) >= {"id", "question", "initial_config", "involved_classes", "path"}
    assert entries[0]["involved_classes"] == ["NavigationEnv"] and "seed" in entries[0]["initial_config"]["NavigationEnv"]
    loaded = b.utils.populate_test_cases_with_predefined_functions([dict(e) for e in entries])
    for entry in loaded:
        truth = answers[entry["id"]]["ground_truth"]
        assert len(entry["question"]) == len(truth) and entry["function"][0]["parameters"]["type"] == "dict"
        offered = {f["name"] for f in entry["function"]}
        assert all(
            c.split("(")[0] in offered | {f["name"] for fs in entry.get("missed_function", {}).values() for f in fs}
            for t in truth
            for c in t
        )
        decoded = [[t] if t else [] for t in truth]  # the ground truth as a model's one step per turn
        verdict = b.mt_checker.multi_turn_checker(decoded, truth, entry, "magnet_multi_turn", f"gt_{entry['id']}")
        assert verdict["valid"], (entry["id"], verdict)
    miss = next(e for e in loaded if "missed_function" in e)
    [(turn, docs)] = miss["missed_function"].items()
    assert docs[0]["name"] == "save_place" and "save_place" not in [f["name"] for f in miss["function"]]
    assert any(call.startswith("save_place(") for call in answers[miss["id"]]["ground_truth"][int(turn)])
    # a wrong value is caught by the same checker: BFCL's state or response check
    entry = next(e for e in loaded if any(answers[e["id"]]["ground_truth"]))
    truth = answers[entry["id"]]["ground_truth"]
    k = next(i for i, t in enumerate(truth) if t)
    wrong = [[t] if t else [] for t in truth]
    wrong[k] = [[truth[k][0].replace("'", "'X", 1) if "'" in truth[k][0] else truth[k][0].replace("=", "=1", 1)]]
    assert not b.mt_checker.multi_turn_checker(wrong, truth, entry, "magnet_multi_turn", f"bad_{entry['id']}")["valid"]
    # single-turn: entries and possible answers as BFCL's simple / parallel / multiple files
    checked = 0
    for path in sorted(out.glob("BFCL_v4_magnet_*_train.json")):
        if "multi_turn" in path.name or "irrelevance" in path.name:
            continue
        singles = {a["id"]: a for a in b.utils.load_file(out / "possible_answer" / path.name)}
        for e in b.utils.load_file(path):
            assert set(e) == {"id", "question", "function"} and isinstance(e["question"][0], list)
            truth = singles[e["id"]]["ground_truth"]
            model_output = [{name: {k: v[0] for k, v in args.items()}} for call in truth for name, args in call.items()]
            category = e["id"].rsplit("_", 1)[0].removeprefix("magnet_").removesuffix("_train")
            verdict = b.ast_checker.ast_checker(e["function"], model_output, truth, b.enums.Language.PYTHON, category, "magnet_prompting")
            assert verdict["valid"], (e["id"], verdict)
            checked += 1
    assert checked
    ids = json.loads((out / "magnet_ids.json").read_text())
    assert set(ids.values()) <= {r.traj_id for r in rows} and len(ids) == sum(r.split == "train" for r in rows)


def test_record_converters_keep_every_call():
    settings = load_settings()
    tools = builtin_environments()["navigation"].tools()
    runner = TaskRunner(settings.llm)
    [nested] = [r.trajectory for r in distill(translate(navigation_fsps()[:1], tools, settings, runner), tools, runner)]
    row = SFTExample(**nested.model_dump())
    calls = sum(len(m.get("tool_calls") or []) for m in row.messages)
    assert sum(len(t) for t in bfcl_record(row)["ground_truth"]) == calls
    # one function_call entry per assistant message, parallel calls of a message as one JSON list
    made = [json.loads(c["value"]) for c in sharegpt_record(row)["conversations"] if c["from"] == "function_call"]
    assert sum(len(v) if isinstance(v, list) else 1 for v in made) == calls


def test_export_without_a_set_says_what_to_run(tmp_path):
    from magnet_assets.cli import app

    result = CliRunner().invoke(app, ["export", "--format", "hf", "--out", str(tmp_path / "x"), "--home", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "magnet run" in result.output
