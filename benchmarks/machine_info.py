"""What every benchmark JSON records about the machine it ran on, and how it is written."""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import version
from pathlib import Path
from typing import Any


def machine(load_before: tuple[float, ...], **extra: Any) -> dict[str, Any]:
    """Cores, the load average before and now, Python, LiteLLM and the platform, then ``extra``."""
    return {
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "litellm": version("litellm"),
        "platform": platform.platform(),
        **extra,
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
