"""Complete prep options for tests: training/prep.py has no defaults of its own."""

from __future__ import annotations

from typing import Any

from recops.config import parse_config
from recops.contracts import prep_options

MINIMAL_CONFIG = {"prefix": "prep-test", "data": {"interactions": {"path": "raw/"}}}


def prep_options_with(**overrides: Any) -> dict[str, Any]:
    """Every option, as a config that makes no choices of its own writes them, then overrides."""
    return {**prep_options(parse_config(MINIMAL_CONFIG)), **overrides}
