"""BFCL v3 with bfcl-eval's own data and checkers: the harness replays BFCL's ground truth at
100%, a model that drops one call loses exactly that entry, single-turn answers are scored by
BFCL's AST checker against possible_answer, bad input fails the entry and the run completes,
served models go through the LLM layer (and its cache), and the contamination report flags
what overlaps BFCL's paths. Skipped when bfcl-eval is not installed."""

from __future__ import annotations

import copy
import json

import pytest

pytest.importorskip("bfcl_eval")

from magnet_lib.evaluation import bfcl
from magnet_lib.evaluation import contamination as cont

if not bfcl.available():  # pragma: no cover - installed without its extra
    pytest.skip(bfcl.unavailable_reason() or "", allow_module_level=True)

from tests.llm_server import llm_server, make_runner


class DropOneCall:
    """The reference, but one call of one turn of one entry is left out."""

    def __init__(self, entry_id: str, turn: int, style: str = "prompting"):
        self.name, self.style, self.results_as = "drop-one", style, "user"
        self.entry_id, self.turn = entry_id, turn
        self.seen: dict[str, int] = {}

    def respond(self, requests):
        out = []
        for r in requests:
            reply = copy.deepcopy(r.reference)
            if r.entry_id == self.entry_id and reply.text.startswith("["):
                turn = self.seen.get(r.entry_id, 0)
                self.seen[r.entry_id] = turn + 1
                if turn == self.turn:
                    calls = bfcl.require().handler_utils.default_decode_execute_prompting(reply.text)
                    reply.text = "[" + ", ".join(calls[:-1]) + "]"
            out.append(reply)
        return out


@pytest.mark.parametrize("style", ["prompting", "fc"])
def test_the_reference_scores_one_on_every_multi_turn_category(style):
    report = bfcl.evaluate(bfcl.ReferenceBackend(style), bfcl.MULTI_TURN, limit=6)
    scores = report.scores()
    assert scores["categories"] == dict.fromkeys(bfcl.MULTI_TURN, 1.0)
    assert scores["n"] == dict.fromkeys(bfcl.MULTI_TURN, 6)
    assert scores["groups"]["multi_turn"] == 1.0 and scores["overall"] == 1.0
    # the held-out functions of miss_func were really added at their turn
    miss = next(e for e in report.entries if e.id == "multi_turn_miss_func_0")
    held_turn = int(next(iter(bfcl.load_entries("multi_turn_miss_func", 1)[0]["missed_function"])))
    assert miss.decoded[held_turn] and not miss.decoded[held_turn - 1]


def test_dropping_one_call_of_one_turn_loses_exactly_that_entry():
    entries = bfcl.load_entries("multi_turn_base", 5)
    target = entries[2]
    turn = next(i for i, calls in enumerate(target["ground_truth"]) if len(calls) >= 2)
    report = bfcl.evaluate(DropOneCall(target["id"], turn), ["multi_turn_base"], limit=5)
    failed = [e for e in report.entries if not e.valid]
    assert [e.id for e in failed] == [target["id"]]
    assert failed[0].error_type.startswith("multi_turn:")
    assert report.accuracy("multi_turn_base") == pytest.approx(0.8)


@pytest.mark.parametrize("style", ["prompting", "fc"])
def test_single_turn_answers_are_scored_by_bfcls_ast_checker_against_possible_answer(style):
    report = bfcl.evaluate(bfcl.ReferenceBackend(style), bfcl.SINGLE_TURN, limit=15)
    assert all(e.valid for e in report.entries), [(e.id, e.error) for e in report.entries if not e.valid][:3]
    [entry] = bfcl.load_entries("simple_python", 1)  # calculate_triangle_area(base=10, height=5)

    class Says:
        name, style, results_as = "says", "prompting", "user"

        def __init__(self, text):
            self.text = text

        def respond(self, requests):
            return [bfcl.StepReply(text=self.text) for _ in requests]

    verdict = lambda text: bfcl.single_turn(Says(text), [entry])[0]
    assert verdict("[calculate_triangle_area(base=10, height=5)]").valid
    assert verdict("[calculate_triangle_area(base=10, height=5, unit='units')]").valid
    wrong = verdict("[calculate_triangle_area(base=11, height=5)]")
    assert not wrong.valid and wrong.error_type.startswith("value_error")
    assert verdict("[calculate_triangle_area(base=10)]").error_type == "simple_function_checker:missing_required"
    assert verdict("I cannot do that").error_type == "ast_decoder:decoder_failed"
    [irrelevant] = bfcl.load_entries("irrelevance", 1)
    assert not bfcl.single_turn(Says("[calculate_triangle_area(base=10, height=5)]"), [irrelevant])[0].valid
    assert bfcl.single_turn(Says("No function fits."), [irrelevant])[0].valid


def test_bad_input_fails_the_entry_with_its_reason_and_the_run_completes():
    entries = bfcl.load_entries("multi_turn_base", 3)
    entries[0]["involved_classes"] = ["NoSuchAPI"]

    class Flaky:
        """Entry 1 gets no answer (a timeout), entry 2 a reply that does not parse."""

        name, style, results_as = "flaky", "prompting", "user"

        def respond(self, requests):
            out = []
            for r in requests:
                if r.entry_id == entries[1]["id"]:
                    out.append(bfcl.StepReply(error="transport: timeout after 60s"))
                elif r.entry_id == entries[2]["id"]:
                    out.append(bfcl.StepReply(text="[cd(folder='document'"))
                else:
                    out.append(r.reference)
            return out

    results = {e.id: e for e in bfcl.MultiTurnRun(Flaky(), entries).run()}
    bad_class, timeout, unparsable = (results[e["id"]] for e in entries)
    assert bad_class.error_type == "multi_turn:class_load_error" and "NoSuchAPI" in bad_class.error
    assert timeout.error_type == "multi_turn:no_answer" and "timeout" in timeout.error
    # a reply that does not decode ends each turn (BFCL's rule); the checker then fails the entry
    assert not unparsable.valid and unparsable.error_type == "multi_turn:empty_turn_model_response"

    class Crashes:
        name, style, results_as = "crashes", "prompting", "user"

        def respond(self, requests):
            raise RuntimeError("CUDA out of memory")

    crashed = bfcl.evaluate(Crashes(), ["multi_turn_base", "simple_python"], limit=2)
    assert len(crashed.entries) == 4 and not any(e.valid for e in crashed.entries)
    assert all("CUDA out of memory" in e.error for e in crashed.entries)


def test_bfcls_executor_state_is_dropped_after_a_run():
    run = bfcl.MultiTurnRun(bfcl.ReferenceBackend(), bfcl.load_entries("multi_turn_base", 2))
    run.run()
    assert not [k for k in vars(bfcl.require().mt_utils) if k.startswith(run.token)]
    again = bfcl.MultiTurnRun(bfcl.ReferenceBackend(), bfcl.load_entries("multi_turn_base", 2)).run()
    assert all(e.valid for e in again)  # fresh state: a rerun is not polluted by the first


@pytest.mark.parametrize("style", ["prompting", "fc"])
def test_a_served_model_goes_through_the_llm_layer_and_its_cache(tmp_path, style):
    from magnet_lib.testing.server import TestServer

    with TestServer(latency_s=0.05) as server:
        _served_and_cached(server, tmp_path, style)


def _served_and_cached(llm_server, tmp_path, style):
    cats = ["multi_turn_miss_func", "simple_python", "irrelevance"]
    runner = make_runner(llm_server, tmp_path / "cache", concurrency=8)
    report = bfcl.evaluate(bfcl.ServedBackend(runner, style), cats, limit=2)
    assert all(e.valid for e in report.entries), [(e.id, e.error) for e in report.entries if not e.valid][:3]
    asked = llm_server.requests
    assert asked == runner.stats["bfcl_step"].calls > len(report.entries)
    assert llm_server.max_in_flight > 1  # entries run in lock step, several requests at once
    if style == "fc":
        assert '"tools"' in json.dumps(bfcl.BfclStepTask().request_params(bfcl.BfclStepInput(messages=[], tools=[{"x": 1}], style="fc")))
    runner.close()
    rerun = make_runner(llm_server, tmp_path / "cache")
    again = bfcl.evaluate(bfcl.ServedBackend(rerun, style), cats, limit=2)
    assert llm_server.requests == asked and rerun.stats["bfcl_step"].cache_hits > 0
    assert again.scores() == report.scores()
    rerun.close()


def test_a_request_that_times_out_fails_its_entry(llm_server, tmp_path):
    llm_server.script("hang", task="bfcl_step")
    runner = make_runner(llm_server, tmp_path / "cache", timeout_s=0.5, max_retries=0)
    report = bfcl.evaluate(bfcl.ServedBackend(runner, "prompting"), ["multi_turn_base"], limit=2)
    failed = [e for e in report.entries if not e.valid]
    assert len(report.entries) == 2 and len(failed) == 1
    assert failed[0].error_type == "multi_turn:no_answer" and "transport" in failed[0].error
    runner.close()


def test_magnet_eval_bfcl_reference_writes_the_scores(tmp_path):
    from typer.testing import CliRunner

    from magnet_assets.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["eval", "--bfcl", "--reference", "--categories", ",".join(bfcl.MULTI_TURN), "--limit", "3", "--output", str(out)]
        + ["--home", str(tmp_path / "home")],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "bfcl_scores.json").read_text())
    assert scores["scores"]["reference"] == {**dict.fromkeys(bfcl.MULTI_TURN, 1.0), "overall": 1.0}
    assert "bfcl_scores.json" in result.output.replace("\n", "") and (out / "bfcl_scores.md").is_file()
    bad = CliRunner().invoke(app, ["eval", "--bfcl", "--reference", "--categories", "live_simple", "--home", str(tmp_path / "home")])
    assert bad.exit_code == 2 and "unsupported" in bad.output


@pytest.mark.slow
def test_a_tiny_checkpoint_runs(tmp_path, monkeypatch):
    """The untrained tiny model writes no usable call: every category but irrelevance is 0; a
    multi-turn prompt longer than its context fails the entry with that reason."""
    from magnet_lib.training.base_models import build_tiny

    monkeypatch.setenv("MAGNET_TRAIN_STUDENT_MAX_NEW_TOKENS", "4")
    model, tok = build_tiny(None)
    model.save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    from typer.testing import CliRunner

    from magnet_assets.cli import app

    result = CliRunner().invoke(
        app,
        ["eval", "--bfcl", "--checkpoint", str(tmp_path / "ckpt"), "--categories", "multi_turn_base,simple_python,irrelevance"]
        + ["--limit", "1", "--output", str(tmp_path / "out"), "--home", str(tmp_path / "home")],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "out" / "bfcl_scores.json").read_text())["scores"]["ckpt"]
    assert scores["irrelevance"] == 1.0 and scores["simple_python"] == 0.0 and scores["multi_turn_base"] == 0.0
    [failure] = [f for f in json.loads((tmp_path / "out" / "bfcl_scores.json").read_text())["models"][0]["failures"] if "multi" in f["id"]]
    assert "more than the model's context" in failure["error"]


# --------------------------------------------------------------------------- contamination


def _item(traj_id: str, names: list[list[str]], kind: str = "multi_turn") -> dict:
    messages = [{"role": "system", "content": "s"}]
    for turn in names:
        messages.append({"role": "user", "content": "q"})
        calls = [{"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": "{}"}} for i, n in enumerate(turn)]
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        messages.append({"role": "assistant", "content": "done"})
    return {"traj_id": traj_id, "kind": kind, "split": "train", "category": "c", "messages": messages}


def test_contamination_flags_exact_paths_and_shared_bigrams():
    paths = bfcl.multi_turn_paths()
    assert len(paths) == 800 and all(p["path"] for p in paths[:50])
    bfcl_path = paths[0]["path"]
    items = [
        _item("exact", [bfcl_path[:2], bfcl_path[2:]]),
        _item("bigram", [[bfcl_path[0], bfcl_path[1]], ["transfer_funds_xyz"]]),
        _item("clean", [["search_places_xyz"], ["plan_route_xyz"]]),
        _item("single", [["only_one"]], kind="single"),
    ]
    for mode, flagged in (("none", set()), ("exact", {"exact"}), ("ngram", {"exact", "bigram"})):
        report = cont.contamination(items, paths, mode)
        assert {i.traj_id for i in report.items if i.flagged} == flagged
    report = cont.contamination(items, paths, "ngram")
    by = {i.traj_id: i for i in report.items}
    assert by["exact"].exact_match and by["exact"].matched_entry == paths[0]["id"]
    assert not by["bigram"].exact_match and by["bigram"].shared_bigrams == 1 and by["bigram"].bigram_overlap == 0.5
    assert by["clean"].shared_bigrams == 0 and by["single"].bigrams == 0
    s = report.summary()
    assert s["exact_match_share"] == pytest.approx(1 / 4) and s["bigram_item_share_multi_turn"] == pytest.approx(2 / 3)
    assert report.frame().height == 4 and "Contamination" in report.markdown()
    kept, dropped = cont.drop_contaminated(items, "exact", paths)
    assert dropped == ["exact"] and [i["traj_id"] for i in kept] == ["bigram", "clean", "single"]
    assert cont.drop_contaminated(items, "none", paths) == (items, [])


def test_the_contamination_report_asset_flags_an_item_copied_from_bfcl(dagster_harness, monkeypatch):
    import polars as pl

    from magnet_lib.distillation.mixing import SFTExample
    from magnet_lib.tables import to_frame

    monkeypatch.setenv("MAGNET_BFCL_DROP_CONTAMINATED", "exact")
    h = dagster_harness
    bfcl_path = bfcl.multi_turn_paths(["multi_turn_base"])[0]["path"]
    rows = [_item("copied", [bfcl_path]), _item("ours", [["plan_route_xyz", "search_places_xyz"]])]
    examples = [SFTExample(tools=[], **{k: v for k, v in r.items()}) for r in rows]
    (h.home / "storage").mkdir(parents=True, exist_ok=True)
    to_frame(examples, SFTExample).write_parquet(h.home / "storage" / "sft_set.parquet")
    result = h.materialize("contamination_report")
    assert result.success
    meta = result.asset_materializations_for_node("contamination_report")[0].metadata
    assert meta["flagged"].value == 1 and meta["exact_match_share"].value == 0.5
    frame = h.table("contamination_report")
    assert frame.filter(pl.col("flagged"))["traj_id"].to_list() == ["copied"]
    assert "| exact path match | 50.0%" in (h.home / "reports" / "contamination_report.md").read_text()
    kept, dropped = cont.drop_contaminated(examples, "exact")  # what sft_set does with this setting
    assert dropped == ["copied"] and [e.traj_id for e in kept] == ["ours"]


def test_eval_reports_bfcl_subset_and_without_bfcl_eval_nothing(tmp_path, monkeypatch):
    from magnet_assets.bfcl import bfcl_subset
    from magnet_lib.settings import load_settings
    from magnet_lib.training.base_models import build_tiny

    monkeypatch.setenv("MAGNET_TRAIN_STUDENT_MAX_NEW_TOKENS", "4")
    model, tok = build_tiny(None)
    model.save_pretrained(tmp_path / "sft")
    tok.save_pretrained(tmp_path / "sft")
    settings = load_settings(home=tmp_path / "home")
    reports, meta = bfcl_subset(settings, {"sft": tmp_path / "sft", "mdpo": tmp_path / "missing"})
    assert [r.model for r in reports] == ["sft"]  # the checkpoint that does not load is left out
    assert {e.category for e in reports[0].entries} == set(settings.bfcl.eval_categories)
    assert meta["bfcl/sft/overall"] == reports[0].scores()["overall"]
    assert (tmp_path / "home" / "reports" / "bfcl_scores.json").is_file()
    monkeypatch.setattr(bfcl, "unavailable_reason", lambda: "bfcl-eval is not installed")
    assert bfcl_subset(settings, {"sft": tmp_path / "sft"}) == ([], {"bfcl": "bfcl-eval is not installed"})
    off = load_settings(home=tmp_path / "home", bfcl={"eval_limit": 0})
    monkeypatch.undo()
    assert bfcl_subset(off, {"sft": tmp_path / "sft"})[0] == []


# --------------------------------------------------------------------------- BFCL as a tool source


def test_bfcls_classes_as_a_renamed_really_executed_tool_source(tmp_path):
    from magnet_lib.models import Call
    from magnet_lib.pool import bfcl_source
    from magnet_lib.pool.execution import EpisodeRuntime
    from magnet_lib.pool.function_pool import discover_categories, load_category
    from magnet_lib.settings import load_settings

    assert "bfcl_file_system" not in discover_categories(load_settings(home=tmp_path))  # opt-in
    settings = load_settings(home=tmp_path, bfcl={"tool_source": True})
    sources = discover_categories(settings)
    assert {f"bfcl_{s}" for s, _ in bfcl_source.CLASSES.values()} <= set(sources)
    mapping = bfcl_source.name_mapping()
    originals = {d["name"] for cls in bfcl_source.CLASSES for d in bfcl_source._docs(cls)}
    assert len(mapping) == len(originals) == 128 and not set(mapping) & originals  # no evaluation name exposed
    assert mapping["fs_make_dir"] == "GorillaFileSystem.mkdir"
    part = load_category(settings, "bfcl_file_system", sources)
    assert not part.rejects and len(part.tools) == 18
    for t in part.tools:
        assert t.executable and t.parameters["type"] == "object"
        assert "GorillaFileSystem" not in t.description and "This tool belongs" not in t.description
    # really executed on BFCL's class, state from one of BFCL's scenarios (chosen by the seed)
    runtime = EpisodeRuntime(part.tools, seed=0)
    listing = runtime.execute(Call(name="fs_list_dir", arguments={}))
    assert isinstance(listing.get("current_directory_content"), list)
    made = runtime.execute(Call(name="fs_make_dir", arguments={"dir_name": "magnet_new"}))
    assert "error" not in made and "magnet_new" in runtime.execute(Call(name="fs_list_dir", arguments={}))["current_directory_content"]
    bad = runtime.execute(Call(name="fs_change_dir", arguments={"folder": "no_such_folder_here"}))
    assert bad["error"]["code"] == "failed"
    wrong = runtime.execute(Call(name="fs_make_dir", arguments={"bogus": 1}))
    assert wrong["error"]["code"] == "invalid_arguments" and "GorillaFileSystem" not in wrong["error"]["message"]
    # the contamination report sees a renamed call as its BFCL name
    path = bfcl.multi_turn_paths(["multi_turn_base"])[0]["path"]
    back = {v.split(".")[1]: k for k, v in mapping.items()}
    item = _item("renamed", [[back[n] for n in path]])
    assert cont.contamination([item], bfcl.multi_turn_paths(), aliases=mapping).items[0].exact_match
    assert not cont.contamination([item], bfcl.multi_turn_paths()).items[0].exact_match
