"""The studies' printed numbers, one YAML file per study, with their source."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@lru_cache(maxsize=None)
def load_reference(study: str) -> dict[str, Any]:
    """Printed numbers of `study` (e.g. 'study000') as a nested dict."""
    text = resources.files(__name__).joinpath(f"{study}.yaml").read_text()
    return yaml.safe_load(text)
