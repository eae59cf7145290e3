"""The credit-risk model: a logistic regression whose coefficients ship as JSON.

The JSON comes from the Kestrelwood model registry (models.kestrelwood.internal); its
``features`` block also documents the type and range each feature was trained on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "model" / "credit_risk.json"


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    intercept: float
    features: dict[str, dict[str, Any]]

    def score(self, features: dict[str, Any]) -> float:
        """Probability of default for one application."""
        z = self.intercept
        for name, spec in self.features.items():
            value = features[name]
            if spec["type"] == "category":
                z += spec["coef"][value]
            else:
                z += spec["coef"] * value
        return 1.0 / (1.0 + math.exp(-z))


def load_model(path: Path = DEFAULT_MODEL) -> Model:
    raw = json.loads(path.read_text())
    return Model(name=raw["name"], version=raw["version"], intercept=raw["intercept"],
                 features=raw["features"])
