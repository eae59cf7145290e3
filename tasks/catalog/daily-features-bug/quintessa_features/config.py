"""Pipeline settings from config/pipeline.toml (production values live in Airflow variables)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "pipeline.toml"


@dataclass(frozen=True)
class Settings:
    mode: str
    local_dir: Path
    output_path: Path
    warehouse_host: str


def load_settings(path: Path = DEFAULT_CONFIG) -> Settings:
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    return Settings(
        mode=raw["source"]["mode"],
        local_dir=REPO_ROOT / raw["source"]["local_dir"],
        output_path=REPO_ROOT / raw["output"]["path"],
        warehouse_host=raw["source"]["warehouse_host"],
    )
