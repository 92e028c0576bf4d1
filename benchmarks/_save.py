"""What the benchmark programs share: where a result was measured, and writing it as JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def save_result(result: dict[str, Any], out: Path) -> None:
    """Write ``result`` to ``out`` as indented JSON (parent folders created) and print the path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"saved {out}")


def machine_info() -> dict[str, Any]:
    """The machine a result was measured on (platform, CPU count, Python)."""
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()}
