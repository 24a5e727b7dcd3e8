"""Scoring policy v1 as data, new policy versions and step-by-step explanations."""

import subprocess
import sys
from datetime import timedelta

import pytest

from ledger.db import unit_of_work
from ledger.epochs.service import ensure_open_epoch
from ledger.errors import InvalidInput
from ledger.intake.service import submit_sessions
from ledger.scoring.policy import POLICY_V1_RULES, ScoreInputs, score_session
from ledger.scoring.service import explain_score, publish_policy
from tests.ledger.factories import new_address, submission


def inputs(active_seconds, actions, categories=("news",)):
    return ScoreInputs(active_seconds, actions, 0, 0, 0, tuple(categories))


@pytest.mark.parametrize(
    ("active_seconds", "actions", "categories", "points"),
    [
        (59, 100, ("news",), 0),  # under a minute
        (4 * 3600 + 1, 10_000, ("news",), 0),  # over four hours
        (600, 300, ("news",), 1000),  # 30 a minute: full quality
        (600, 30, ("news",), 500),  # 3 a minute: half quality
        (600, 5, ("news",), 0),  # under 1 a minute
        (600, 1200, ("news",), 1000),  # 120 a minute: still full
        (600, 1210, ("news",), 500),  # 121 a minute: half
        (600, 3010, ("news",), 0),  # 301 a minute: bot-like
        (600, 300, ("news", "productivity"), 1500),  # highest demand wins
        (659, 300, ("travel",), 1200),  # minutes floor to 10
    ],
)
def test_policy_v1_points(active_seconds, actions, categories, points):
    assert score_session(POLICY_V1_RULES, inputs(active_seconds, actions, categories)).points == points


def test_explain_matches_stored_score(db, settings, now):
    ensure_open_epoch(db, settings=settings, now=now)
    [result] = submit_sessions(db, [submission(new_address(), now - timedelta(hours=1))], settings=settings, now=now)

    explanation = explain_score(db, result.session_id)

    assert explanation.matches
    assert explanation.recomputed_points == result.points
    assert any("density" in step for step in explanation.steps)


def test_new_policy_applies_from_its_time_only(db, settings, now):
    ensure_open_epoch(db, settings=settings, now=now)
    contributor = new_address()
    [before] = submit_sessions(db, [submission(contributor, now - timedelta(hours=1))], settings=settings, now=now)
    doubled = {**POLICY_V1_RULES, "points_per_minute": 200}

    policy = publish_policy(db, rules=doubled, effective_from=now + timedelta(minutes=1), now=now)
    later = now + timedelta(hours=2)
    [after] = submit_sessions(db, [submission(contributor, later - timedelta(minutes=50))], settings=settings, now=later)

    assert before.policy_version == 1
    assert after.policy_version == policy.version
    assert after.points == 2 * before.points
    assert explain_score(db, before.session_id).matches


def test_policy_in_past_rejected(db, now):
    with pytest.raises(InvalidInput, match="in the past"):
        publish_policy(db, rules=POLICY_V1_RULES, effective_from=now - timedelta(seconds=1), now=now)


def test_malformed_policy_rejected(db, now):
    with pytest.raises(InvalidInput, match="points_per_minute"):
        publish_policy(db, rules={**POLICY_V1_RULES, "points_per_minute": 1.5}, effective_from=now + timedelta(days=1), now=now)


def test_score_explain_command(committing_factory, isolated_database_url, settings, now):
    with unit_of_work(committing_factory) as db:
        ensure_open_epoch(db, settings=settings, now=now)
        [result] = submit_sessions(db, [submission(new_address(), now - timedelta(hours=1))], settings=settings, now=now)

    completed = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "score", "explain", str(result.session_id)],
        env={"DATABASE_URL": isolated_database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )

    assert completed.returncode == 0, completed.stderr
    assert f"recomputed {result.points}" in completed.stdout
    assert "consistent" in completed.stdout
