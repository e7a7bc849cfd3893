"""Postgres setting values as the session reads them back from the catalog server."""

from __future__ import annotations

import re

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """A Postgres time setting as seconds: '0' -> 0, '250ms' -> 0.25, '5s' -> 5, '1min' -> 60."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", text)
    if found is None:
        return 0.0
    return float(found.group(1)) * _UNITS.get(found.group(2) or "ms", 1e-3)


def parse_search_path(text: str) -> list[str]:
    return [p.strip().strip('"') for p in text.split(",") if p.strip()]
