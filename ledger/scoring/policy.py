"""Scoring policies as data, and the pure function that applies one to a session.

A policy is a JSON document stored with a version. All arithmetic is on integers and floors at
each step, so the same inputs give the same points on any machine.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Policy v1 applies to every session that starts from this instant on.
POLICY_V1_EFFECTIVE_FROM = datetime(2024, 1, 1, tzinfo=UTC)

POLICY_V1_RULES: dict[str, Any] = {
    "min_active_seconds": 60,
    "max_active_seconds": 4 * 3600,
    "points_per_minute": 100,
    # Actions per active minute (floored) -> quality in basis points; inclusive bounds.
    # Below 1 action a minute or above 300 (bot-like) the quality is 0.
    "quality_bands": [
        {"min_density": 1, "max_density": 4, "quality_bp": 5000},
        {"min_density": 5, "max_density": 120, "quality_bp": 10000},
        {"min_density": 121, "max_density": 300, "quality_bp": 5000},
    ],
    "demand_bp": {
        "productivity": 15000,
        "developer": 15000,
        "travel": 12000,
        "shopping": 11000,
        "education": 11000,
    },
    "default_demand_bp": 10000,
    "daily_cap_points": 30000,
}

BASIS_POINTS = 10_000


class InvalidPolicy(ValueError):
    """A policy document is missing a rule or has a rule of the wrong type."""


@dataclass(frozen=True)
class ScoreInputs:
    """Session fields the policy reads."""

    active_seconds: int
    clicks: int
    keystrokes: int
    scrolls: int
    navigations: int
    categories: tuple[str, ...]

    @property
    def actions(self) -> int:
        """Total recorded actions."""
        return self.clicks + self.keystrokes + self.scrolls + self.navigations

    def to_json(self) -> dict[str, Any]:
        """Return the inputs as stored beside the score."""
        return {
            "active_seconds": self.active_seconds,
            "clicks": self.clicks,
            "keystrokes": self.keystrokes,
            "scrolls": self.scrolls,
            "navigations": self.navigations,
            "categories": list(self.categories),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ScoreInputs":
        """Rebuild inputs stored with `to_json`."""
        return cls(
            active_seconds=int(data["active_seconds"]),
            clicks=int(data["clicks"]),
            keystrokes=int(data["keystrokes"]),
            scrolls=int(data["scrolls"]),
            navigations=int(data["navigations"]),
            categories=tuple(data["categories"]),
        )


@dataclass(frozen=True)
class ScoreBreakdown:
    """The points a policy gives before the daily cap, with every intermediate value."""

    minutes: int
    density: int
    quality_bp: int
    demand_bp: int
    points: int
    zero_reason: str | None = None
    """Reason code when a rule, rather than arithmetic, made the points 0."""
    steps: list[str] = field(default_factory=list)
    """Human-readable account of each step, for `ledger score explain`."""


def _require_int(rules: dict[str, Any], name: str) -> int:
    value = rules.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPolicy(f"policy rule {name!r} must be an integer, got {value!r}")
    return value


def validate_rules(rules: dict[str, Any]) -> None:
    """Check that a policy document has every rule with the right type.

    Raises:
        InvalidPolicy: naming the first bad rule.
    """
    for name in (
        "min_active_seconds",
        "max_active_seconds",
        "points_per_minute",
        "default_demand_bp",
        "daily_cap_points",
    ):
        _require_int(rules, name)
    bands = rules.get("quality_bands")
    if not isinstance(bands, list) or not bands:
        raise InvalidPolicy("policy rule 'quality_bands' must be a non-empty list")
    for band in bands:
        for key in ("min_density", "max_density", "quality_bp"):
            _require_int(band, key)
    demand = rules.get("demand_bp")
    if not isinstance(demand, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in demand.values()
    ):
        raise InvalidPolicy("policy rule 'demand_bp' must map categories to integer basis points")


def score_session(rules: dict[str, Any], inputs: ScoreInputs) -> ScoreBreakdown:
    """Apply a policy to one session's inputs, before the daily cap."""
    validate_rules(rules)
    steps: list[str] = []

    minutes = inputs.active_seconds // 60
    steps.append(f"minutes = active_seconds // 60 = {inputs.active_seconds} // 60 = {minutes}")

    if inputs.active_seconds < rules["min_active_seconds"]:
        steps.append(f"active_seconds < {rules['min_active_seconds']}: score 0 (too_short)")
        return ScoreBreakdown(minutes, 0, 0, 0, 0, "too_short", steps)
    if inputs.active_seconds > rules["max_active_seconds"]:
        steps.append(f"active_seconds > {rules['max_active_seconds']}: score 0 (too_long)")
        return ScoreBreakdown(minutes, 0, 0, 0, 0, "too_long", steps)

    density = inputs.actions // minutes
    steps.append(f"density = actions // minutes = {inputs.actions} // {minutes} = {density}")

    quality_bp = 0
    for band in rules["quality_bands"]:
        if band["min_density"] <= density <= band["max_density"]:
            quality_bp = band["quality_bp"]
            break
    steps.append(f"quality = {quality_bp} bp for a density of {density} actions a minute")

    demand_table: dict[str, int] = rules["demand_bp"]
    demand_bp = max(
        (demand_table.get(category, rules["default_demand_bp"]) for category in inputs.categories),
        default=rules["default_demand_bp"],
    )
    steps.append(f"demand = {demand_bp} bp (maximum over categories {list(inputs.categories)})")

    points = minutes * rules["points_per_minute"] * quality_bp // BASIS_POINTS
    points = points * demand_bp // BASIS_POINTS
    steps.append(
        f"points = {minutes} * {rules['points_per_minute']} * {quality_bp} // {BASIS_POINTS}"
        f" * {demand_bp} // {BASIS_POINTS} = {points}"
    )
    zero_reason = "low_quality" if quality_bp == 0 else None
    return ScoreBreakdown(minutes, density, quality_bp, demand_bp, points, zero_reason, steps)


def apply_daily_cap(points: int, *, already_today: int, cap: int) -> int:
    """Return the part of `points` that fits under the daily cap."""
    room = max(cap - already_today, 0)
    return min(points, room)
