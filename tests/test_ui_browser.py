"""The Dagster UI in a real browser (issue 10, item 8): Debian's chromium driven by Playwright.

A home with two imported categories, ``marine`` and ``orchard`` (no built-ins), materialized
up to ``dependency_edges`` by ``magnet run``. Then ``magnet ui`` is started, one tool of
``marine`` changes, and the ``category_sensor`` of ``magnet ui``'s own daemon records the new
source version. In the browser:

- ``function_pool``'s Partitions tab shows ``marine`` Unsynced (its cause: ``tool_sources``
  has a new data version) and ``orchard`` not;
- the asset's own "Materialize…" button, with ``marine`` selected, launches one run of that
  partition; the instance then holds new materializations of ``marine`` only (the multi-asset's
  two outputs), ``orchard``'s latest materializations and files are untouched;
- afterwards ``function_pool[marine]`` is no longer Unsynced, and the next asset's partition,
  ``dependency_edges[marine]``, is (Dagster's mark is one step deep), ``orchard`` nowhere.

The state is also read through the webserver's GraphQL API (``staleStatusByPartition``) so
that the marks on the page and Dagster's status are checked to agree. Screenshots of every
step go to ``$MAGNET_HOME/screens`` (the test prints the folder). At the end SIGTERM to
``magnet ui`` must leave none of the processes it started.

Needs ``scripts/install_browser_test.sh`` (Debian's chromium and the ``browser`` extra);
skipped without them. Slow: the UI alone takes a minute or more to start on 2 busy cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from magnet_lib.pool.function_pool import discover_categories
from magnet_lib.settings import load_settings
from tests.test_incremental import ORCHARD, marine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "scripts/install_browser_test.sh"
CHROMIUM = os.environ.get("MAGNET_CHROMIUM", "/usr/bin/chromium")
# Chromium in a closed network: without the background-networking flags its own connections
# (updates, sync, field trials) are refused and slow every page down
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHANGED = "A length converted from feet to metres or back."  # the new description of marine's convert_length
UNSYNCED = re.compile(r"^Unsynced \(\d+\)$")  # the badge beside a partition's name
UI_START_S, SENSOR_S, RUN_S = 420, 240, 600  # generous: 2 shared cores

STALE_QUERY = """
query Stale($path: [String!]!, $partitions: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode { staleStatusByPartition(partitions: $partitions) } }
}"""


def _needs_browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM}: run {INSTALL}")
    try:
        import playwright.sync_api
        import psutil
    except ImportError as exc:
        pytest.skip(f"needs the browser extra ({exc.name} is missing): run {INSTALL}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _digests(storage: Path, category: str) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(storage)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in storage.rglob(f"{category}.parquet")
    }


def _latest(instance: dg.DagsterInstance) -> dict[tuple[str, str | None], int]:
    """(asset, partition) -> storage id of its latest materialization."""
    latest: dict[tuple[str, str | None], int] = {}
    for key in instance.get_asset_keys():
        for record in instance.fetch_materializations(key, limit=1000).records:
            slot = (key.to_user_string(), record.partition_key)
            latest[slot] = max(latest.get(slot, 0), record.storage_id)
    return latest


def _wait(what: str, check, timeout_s: float, log: Path, every_s: float = 2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}; end of the UI's log:\n{tail}")


class Ui:
    """The page, the screenshots and the webserver's GraphQL API."""

    def __init__(self, page, base: str, screens: Path):
        self.page, self.base, self.screens = page, base, screens
        self.shots: list[Path] = []

    def shot(self, name: str) -> None:
        path = self.screens / f"{len(self.shots) + 1:02d}_{name}.png"
        self.page.screenshot(path=str(path))
        self.shots.append(path)

    def stale(self, asset: str, partitions: list[str]) -> dict[str, str]:
        body = httpx.post(
            f"{self.base}/graphql", json={"query": STALE_QUERY, "variables": {"path": [asset], "partitions": partitions}}, timeout=60
        )
        body.raise_for_status()
        return dict(zip(partitions, body.json()["data"]["assetNodeOrError"]["staleStatusByPartition"], strict=True))

    def partitions_tab(self, asset: str) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        self.page.goto(f"{self.base}/assets/{asset}?view=partitions", timeout=120_000)
        self.page.get_by_text("Partitions Selected").wait_for(timeout=120_000)
        skip = self.page.get_by_role("button", name="Skip")  # the UI's one-time "join the community" dialog
        with contextlib.suppress(PlaywrightTimeout):
            skip.wait_for(timeout=5_000)
            skip.click()

    def select(self, partition: str):
        """Click a partition in the list; returns the locator of the Unsynced badge beside the
        partition's name in the detail pane, once that pane shows the partition."""
        from playwright.sync_api import expect

        self.page.locator(f"[title='{partition}']").first.click()  # the list's entry
        title = self.page.locator(f"span > [title='{partition}']")  # the detail pane's title
        expect(title).to_have_count(1, timeout=60_000)
        header = title.locator("xpath=../..")  # the title, its status tag and its Unsynced badge
        expect(header.get_by_text("Materialized", exact=True)).to_be_visible(timeout=60_000)
        expect(self.page.get_by_text("Latest materialization")).to_be_visible(timeout=60_000)
        self.page.wait_for_timeout(3_000)  # the stale status comes in its own query
        return header.get_by_text(UNSYNCED)

    def unsynced_by(self, asset: str, stale: str, fresh: str, parent: str) -> None:
        """On ``asset``'s Partitions tab, ``stale`` carries the Unsynced badge whose hover names
        ``parent`` with a new data version, and ``fresh`` carries none; a screenshot of each."""
        from playwright.sync_api import expect

        self.partitions_tab(asset)
        badge = self.select(stale)
        expect(badge).to_have_count(1)
        badge.hover()
        expect(self.page.get_by_text(parent, exact=True).first).to_be_visible()
        expect(self.page.get_by_text("has a new data version").first).to_be_visible()
        self.shot(f"{asset}_{stale}_unsynced")
        expect(self.select(fresh)).to_have_count(0)
        self.shot(f"{asset}_{fresh}_synced")


def _stop(proc: subprocess.Popen, grace_s: float = 120.0) -> list[str]:
    """SIGTERM to ``magnet ui``; the processes it started that are still alive afterwards."""
    import psutil

    family = psutil.Process(proc.pid).children(recursive=True)
    groups = {proc.pid} | {os.getpgid(p.pid) for p in family if p.is_running()}
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=grace_s)
    psutil.wait_procs(family, timeout=30)
    # also members of their process groups that appeared after the snapshot (zombies aside)
    left = []
    for p in psutil.process_iter(["pid", "status", "cmdline"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(p.pid) in groups and p.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join((p.info['cmdline'] or [])[:5])}")
    return left


def test_ui_marks_only_the_changed_category_and_its_materialize_action_rebuilds_only_it(magnet_home, monkeypatch):
    _needs_browser()
    from playwright.sync_api import expect, sync_playwright

    tools_dir = magnet_home.parent / "tools"
    for name, specs in (("marine", marine()), ("orchard", ORCHARD)):
        (tools_dir / name).mkdir(parents=True)
        (tools_dir / name / f"{name}.json").write_text(json.dumps(specs))
    screens = magnet_home / "screens"
    screens.mkdir(parents=True)
    print(f"\nscreenshots: {screens}")
    dagster_home = magnet_home / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("MAGNET_TOOLS_DIR", str(tools_dir))
    monkeypatch.setenv("MAGNET_BUILTIN_TOOLS", "false")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    settings = load_settings(home=magnet_home, tools_dir=tools_dir)
    storage = settings.storage_dir

    timings: dict[str, float] = {}
    clock = [time.monotonic()]

    def lap(phase: str) -> None:
        now = time.monotonic()
        timings[phase] = round(now - clock[0], 1)
        clock[0] = now

    # materialize once, as a user would: both categories up to the dependency edges
    first = subprocess.run(
        [sys.executable, "-m", "magnet_assets.cli", "run", "--asset", "dependency_edges"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    lap("magnet run --asset dependency_edges")
    before_versions = {cat: src.version() for cat, src in discover_categories(settings).items()}
    assert set(before_versions) == {"marine", "orchard"}

    port, log = _free_port(), magnet_home / "ui.log"
    base = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        ui_proc = subprocess.Popen(
            [sys.executable, "-m", "magnet_assets.cli", "ui", "--port", str(port)],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    stopped = False
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        # the webserver answers once the code location has loaded
        def location_loaded():
            assert ui_proc.poll() is None, f"magnet ui exited with {ui_proc.returncode}:\n{log.read_text()[-3000:]}"
            with contextlib.suppress(httpx.HTTPError, KeyError, TypeError):
                body = httpx.post(
                    f"{base}/graphql",
                    json={"query": STALE_QUERY, "variables": {"path": ["function_pool"], "partitions": ["marine"]}},
                    timeout=30,
                )
                return body.json()["data"]["assetNodeOrError"]["staleStatusByPartition"]
            return None

        _wait("the Dagster UI and its code location", location_loaded, UI_START_S, log, every_s=5)
        lap("magnet ui up, code location loaded")

        with tempfile.TemporaryDirectory(prefix="magnet-chromium-") as profile, sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, viewport={"width": 1280, "height": 760}
            )
            browser.set_default_timeout(60_000)
            ui = Ui(browser.new_page(), base, screens)

            # before the change: nothing is Unsynced
            assert ui.stale("function_pool", ["marine", "orchard"]) == {"marine": "FRESH", "orchard": "FRESH"}
            ui.partitions_tab("function_pool")
            expect(ui.select("marine")).to_have_count(0)
            ui.shot("function_pool_marine_before_the_change")

            lap("browser start, the page before the change")
            # change one tool of marine; the UI's sensor records the new source version
            (tools_dir / "marine" / "marine.json").write_text(json.dumps(marine(CHANGED)))
            new_version = discover_categories(settings)["marine"].version()
            assert new_version != before_versions["marine"]

            def observed(category: str) -> str | None:
                records = instance.fetch_observations(dg.AssetKey("tool_sources"), limit=50).records
                versions = [r.asset_observation.tags.get("dagster/data_version") for r in records if r.partition_key == category]
                return versions[0] if versions else None  # newest first

            _wait("the category sensor to record marine's new version", lambda: observed("marine") == new_version, SENSOR_S, log)
            lap("the sensor recorded the change")
            assert observed("orchard") == before_versions["orchard"]
            assert ui.stale("function_pool", ["marine", "orchard"]) == {"marine": "STALE", "orchard": "FRESH"}
            assert ui.stale("dependency_edges", ["marine", "orchard"]) == {"marine": "FRESH", "orchard": "FRESH"}  # one step deep

            # the page: marine Unsynced, because tool_sources has a new data version; orchard not
            ui.unsynced_by("function_pool", stale="marine", fresh="orchard", parent="tool_sources")
            lap("the pages with marine unsynced")

            # the UI's own materialize action, with marine selected
            orchard_files = _digests(storage, "orchard")
            latest_before = _latest(instance)
            runs_before = {r.run_id for r in instance.get_runs()}
            ui.select("marine")
            ui.page.get_by_role("button", name="Materialize…").click()
            confirm = ui.page.get_by_role("button", name="Confirm")  # function_pool is a multi-asset with tool_rejects
            expect(confirm).to_be_visible()
            ui.shot("materialize_multi_asset_notice")
            confirm.click()
            dialog = ui.page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
            expect(dialog.get_by_text("Launch runs to materialize 2 assets")).to_be_visible()
            expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
            expect(dialog.get_by_text("marine", exact=True).first).to_be_visible()
            expect(dialog.get_by_text("orchard", exact=True)).to_have_count(0)
            ui.shot("materialize_dialog_marine_only")
            dialog.get_by_role("button", name="Launch 1 run").click()

            def new_runs_done():
                runs = [r for r in instance.get_runs() if r.run_id not in runs_before]
                return runs if runs and all(r.is_finished for r in runs) else None

            runs = _wait("the run launched from the UI", new_runs_done, RUN_S, log, every_s=3)
            lap("the run launched from the UI finished")
            assert len(runs) == 1, [r.tags for r in runs]
            (run,) = runs
            assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
            assert run.tags.get("dagster/partition") == "marine"

            # only marine was rebuilt: the new materializations are the multi-asset's two
            # outputs of marine; orchard's latest materializations and files are unchanged
            latest_after = _latest(instance)
            rebuilt = {slot for slot, storage_id in latest_after.items() if storage_id != latest_before.get(slot)}
            assert rebuilt == {("function_pool", "marine"), ("tool_rejects", "marine")}
            for slot in latest_before:
                if slot[1] == "orchard":
                    assert latest_after[slot] == latest_before[slot], slot
            assert _digests(storage, "orchard") == orchard_files
            tools = pl.read_parquet(storage / "function_pool" / "marine.parquet")
            assert tools.filter(pl.col("name") == "convert_length")["description"].to_list() == [CHANGED]

            # afterwards: function_pool[marine] is synced; dependency_edges[marine] is the next one
            ui.page.goto(f"{base}/runs/{run.run_id}")
            expect(ui.page.get_by_text("Success").first).to_be_visible(timeout=120_000)
            ui.shot("run_from_the_ui_succeeded")
            assert ui.stale("function_pool", ["marine", "orchard"]) == {"marine": "FRESH", "orchard": "FRESH"}
            assert ui.stale("dependency_edges", ["marine", "orchard"]) == {"marine": "STALE", "orchard": "FRESH"}
            ui.partitions_tab("function_pool")
            expect(ui.select("marine")).to_have_count(0)
            ui.shot("function_pool_marine_synced_again")
            ui.unsynced_by("dependency_edges", stale="marine", fresh="orchard", parent="function_pool")
            browser.close()

        lap("the pages after the run")
        left = _stop(ui_proc)
        lap("magnet ui stopped (SIGTERM)")
        stopped = True
        assert not left, f"still running after SIGTERM to magnet ui: {left}"
        print(f"screenshots: {', '.join(p.name for p in ui.shots)}")
        print(f"timings (s): {json.dumps(timings)}")
    finally:
        if not stopped and ui_proc.poll() is None:
            with contextlib.suppress(Exception):
                _stop(ui_proc, grace_s=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(ui_proc.pid, signal.SIGKILL)
        instance.dispose()
