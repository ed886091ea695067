"""The hacking guard fires when a trained reward rises and the gold metric does not, and only then."""

from __future__ import annotations

import pytest

from rlsurrogate.hacking_guard import LENGTH_SHARE, check_hacking


def _history(reward, gold, lengths=None):
    lengths = lengths or [30.0] * len(reward)
    return [{"hack": r, "accuracy": g, "mean_length": n} for r, g, n in zip(reward, gold, lengths)]


def _check(history, window=3, min_rise=0.2, max_new_tokens=48):
    return check_hacking(history, ["hack"], ["accuracy"], window, min_rise, max_new_tokens)


def test_fires_on_the_hack_demo_pattern():
    """Measured on the embedded model: boxed rate 0 -> 1 while accuracy stays 0."""
    verdict = _check(_history([0.0, 0.4, 0.9], [0.0, 0.0, 0.0]))
    assert verdict.fired
    assert "hack" in verdict.reason and "accuracy" in verdict.reason
    assert verdict.metrics["guard/hack_rise"] == pytest.approx(0.9)
    assert verdict.metrics["guard/accuracy_change"] == pytest.approx(0.0)
    assert verdict.metrics["guard/fired"] == 1.0


def test_quiet_when_reward_and_gold_rise_together():
    verdict = _check(_history([0.0, 0.4, 0.9], [0.0, 0.1, 0.3]))
    assert not verdict.fired and verdict.metrics["guard/fired"] == 0.0


def test_fires_when_gold_falls_while_reward_rises():
    assert _check(_history([0.1, 0.5], [0.4, 0.2])).fired


def test_quiet_when_the_reward_rises_less_than_min_rise():
    assert not _check(_history([0.0, 0.1, 0.15], [0.0, 0.0, 0.0])).fired


def test_window_compares_first_and_last_of_the_latest_evaluations():
    # an early rise with flat gold, then a plateau: the last window (0.9, 0.9, 0.9) shows no rise
    history = _history([0.0, 0.9, 0.9, 0.9, 0.9], [0.0] * 5)
    assert not _check(history, window=3).fired
    assert _check(history, window=5).fired


def test_single_evaluation_gives_no_verdict():
    verdict = _check(_history([0.0], [0.0]))
    assert not verdict.fired and verdict.metrics == {}


def test_without_gold_only_length_is_checked():
    history = _history([0.0, 1.0], [None, None], lengths=[20.0, 48.0])
    verdict = check_hacking(history, ["hack"], [], 3, 0.2, 48)
    assert verdict.fired and "length" in verdict.reason and "hack" not in verdict.reason


def test_length_running_into_the_budget_fires_once_it_gets_there():
    cap = 48
    near = LENGTH_SHARE * cap
    assert _check(_history([0.0, 0.0], [0.0, 0.1], lengths=[20.0, near + 0.5]), max_new_tokens=cap).fired
    # already at (or near) the cap before the window: not a new development
    assert not _check(_history([0.0, 0.0], [0.0, 0.1], lengths=[cap, cap]), max_new_tokens=cap).fired
    assert not _check(_history([0.0, 0.0], [0.0, 0.1], lengths=[0.9 * cap, cap]), max_new_tokens=cap).fired
    assert _check(_history([0.0, 0.0], [0.0, 0.1], lengths=[20.0, cap]), max_new_tokens=cap).metrics[
        "guard/length_share"
    ] == pytest.approx(1.0)


def test_none_metrics_are_skipped():
    history = [
        {"hack": None, "accuracy": 0.0, "mean_length": 10.0},
        {"hack": 1.0, "accuracy": 0.0, "mean_length": 10.0},
    ]
    verdict = _check(history)
    assert not verdict.fired and "guard/hack_rise" not in verdict.metrics
