"""Ready-made scoring models and threshold presets, as the JSON a workspace stores.

The dicts here are shared: take ``copy.deepcopy`` (or the ``*_json()`` helpers) before changing or storing one.
"""

from __future__ import annotations

import copy
from typing import Any

from scoring.config import ScoringModelConfig, Thresholds, parse_model, parse_thresholds

# Seed 000's `scoring.configure({...})`, transcribed to JSON: regex literals as strings, Infinity as null.
SEED_000_MODEL: dict[str, Any] = {
    "maxScore": 100,
    "demographic": {
        "jobTitle": [
            {"match": "/\\b(ceo|cto|cmo|vp|director)\\b/i", "points": 20},
            {"match": "/\\b(manager|lead)\\b/i", "points": 10},
            {"match": "/\\b(analyst|specialist)\\b/i", "points": 5},
        ],
        "companySize": [
            {"range": [500, None], "points": 20},
            {"range": [100, 499], "points": 15},
            {"range": [50, 99], "points": 10},
            {"range": [10, 49], "points": 5},
        ],
        "industry": [
            {"match": ["Technology", "SaaS", "Software"], "points": 15},
            {"match": ["Finance", "Healthcare"], "points": 10},
            {"match": ["Retail", "E-commerce"], "points": 8},
        ],
    },
    "behavioral": {
        "events": [
            {"name": "pricing_page_viewed", "points": 10, "maxOccurrences": 3},
            {"name": "demo_requested", "points": 25},
            {"name": "trial_started", "points": 30},
            {"name": "feature_explored", "points": 5, "maxOccurrences": 5},
            {"name": "content_downloaded", "points": 8, "maxOccurrences": 3},
            {"name": "email_opened", "points": 2, "maxOccurrences": 5},
            {"name": "email_clicked", "points": 5, "maxOccurrences": 5},
        ],
        "pageviews": [
            {"urlPattern": "/\\/pricing/", "points": 8},
            {"urlPattern": "/\\/enterprise/", "points": 10},
            {"urlPattern": "/\\/case-studies/", "points": 5},
            {"urlPattern": "/\\/docs/", "points": 3},
        ],
        "engagement": {
            "sessionDuration": [{"minutes": [5, None], "points": 5}, {"minutes": [2, 5], "points": 3}],
            "pagesPerSession": [{"count": [5, None], "points": 5}, {"count": [3, 5], "points": 3}],
            "returnVisits": [{"count": [5, None], "points": 10}, {"count": [3, 5], "points": 5}],
        },
    },
    "decay": {"enabled": True, "halfLife": 30, "minimumScore": 10, "excludeEvents": ["demo_requested", "trial_started"]},
    "negative": {
        "events": [{"name": "unsubscribed", "points": -20}, {"name": "bounced_email", "points": -10}],
        "inactivityDays": [{"days": 30, "points": -5}, {"days": 60, "points": -10}, {"days": 90, "points": -15}],
    },
}

# The model a new workspace starts with.
DEFAULT_MODEL = SEED_000_MODEL

THRESHOLD_PRESETS: dict[str, dict[str, Any]] = {
    # Seed 000's setThresholds stages. Its automation (notify sales-team@company.com, Slack #new-mqls, …) names the seed's
    # example recipients, so a new workspace starts without actions and adds its own.
    "seed000": {
        "stages": [
            {"stage": "cold", "minScore": 0, "maxScore": 19},
            {"stage": "warm", "minScore": 20, "maxScore": 49},
            {"stage": "hot", "minScore": 50, "maxScore": 74},
            {"stage": "mql", "minScore": 75, "maxScore": 89, "lifecycleStage": "mql"},
            {"stage": "sql", "minScore": 90, "maxScore": 100, "lifecycleStage": "sql"},
        ]
    },
    # Seed 002: "0-39 cold, 40-69 warm, 70+ hot".
    "three_tier": {
        "stages": [
            {"stage": "cold", "minScore": 0, "maxScore": 39},
            {"stage": "warm", "minScore": 40, "maxScore": 69},
            {"stage": "hot", "minScore": 70, "maxScore": None},
        ]
    },
    # Seed 003 (LeadBoxer): Cold 0-39, Qualified 40-59, Warm 60-79, Hot 80-100.
    "leadboxer": {
        "stages": [
            {"stage": "cold", "minScore": 0, "maxScore": 39},
            {"stage": "qualified", "minScore": 40, "maxScore": 59},
            {"stage": "warm", "minScore": 60, "maxScore": 79},
            {"stage": "hot", "minScore": 80, "maxScore": 100},
        ]
    },
}
DEFAULT_THRESHOLD_PRESET = "seed000"


def default_model_json() -> dict[str, Any]:
    """A copy of the default model's JSON, safe to store and edit."""
    return copy.deepcopy(DEFAULT_MODEL)


def default_model() -> ScoringModelConfig:
    return parse_model(DEFAULT_MODEL)


def threshold_preset_json(name: str = DEFAULT_THRESHOLD_PRESET) -> dict[str, Any]:
    """A copy of a preset's JSON; KeyError for an unknown name."""
    return copy.deepcopy(THRESHOLD_PRESETS[name])


def threshold_preset(name: str = DEFAULT_THRESHOLD_PRESET) -> Thresholds:
    return parse_thresholds(THRESHOLD_PRESETS[name])
