"""The data do not depend on Python's hash seed: ``query_call_pairs`` of social_media (whose
environment keeps likes and followers) is byte-identical under two ``PYTHONHASHSEED`` values
(issue 15: ``_Post.likes`` was a set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import hashlib, sys, tempfile
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import Episode
from magnet_lib.pool.envs.social_media import SocialMediaEnv
from magnet_lib.settings import load_settings
from magnet_lib.tables import to_frame
from magnet_lib.translation.episodes import translate
from tests.translation_fixtures import augmented_for

settings = load_settings(home=tempfile.mkdtemp())
tools = SocialMediaEnv.tools()
runner = TaskRunner(settings.llm)
fsps = augmented_for(tools, settings, runner)[:16]
episodes = translate(fsps, tools, settings, runner)
assert any(e.status == "ok" for e in episodes)
print(hashlib.sha256(to_frame(episodes, Episode).write_ndjson().encode()).hexdigest())
"""


def test_query_call_pairs_do_not_depend_on_the_hash_seed(tmp_path):
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT), "MAGNET_HOME": str(tmp_path / seed)}
        runs.append(
            subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
        outputs.append(out.strip())
    assert outputs[0] == outputs[1]
