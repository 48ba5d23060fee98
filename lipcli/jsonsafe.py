"""Strict JSON for every machine-readable output (stdout, logs, result rows)."""
from __future__ import annotations

import math
from typing import Any


def finite(v: Any) -> Any:
    """NaN/inf become null (JSON has neither), recursively through dicts, lists and tuples."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    return v
