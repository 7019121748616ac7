"""The A/B test manager on SQLite and PostgreSQL: lifecycle, sticky assignment, auto-complete,
results and winner rules."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from whisper_cascade.abreport import build_results
from whisper_cascade.abtest import ABTestConfig, ABTestNotFoundError, ABTests, assign_arm
from whisper_cascade.errors import InvalidArgumentError, StateError
from whisper_cascade.store import ABObservation, SqliteStore, Store, open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = open_store(tmp_path / "store.db")
    else:
        s = open_store(request.getfixturevalue("pg_server").new_database(), spool_dir=tmp_path)
    try:
        yield s
    finally:
        s.close()


def _feed(tests: ABTests, tid: str, means: dict[str, float], n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        arm = tests.assign(tid, f"session-{seed}-{i}")
        tests.record(
            tid,
            arm,
            f"job{i}",
            {
                "score": float(rng.normal(means[arm], 0.1)),
                "latency_s": float(rng.lognormal(0, 0.5)),
                "cost": 1.0 if arm == "A" else 2.5,
                "failed": bool(rng.random() < 0.05),
                "wer": float(abs(rng.normal(0.2, 0.05))) if i % 2 else None,
            },
        )


def test_lifecycle_list_and_errors(store: Store) -> None:
    clock = Clock()
    tests = ABTests(store, clock=clock)
    tid = tests.create("first", {"A": "balanced", "B": "fast"}, split={"A": 0.7, "B": 0.3})
    other = tests.create("second", {"x": "micro", "y": "micro-s"}, test_id="fixed-id")
    assert other == "fixed-id"
    assert [t.test_id for t in tests.list()] == [tid, other]
    t = tests.get(tid)
    assert t.status == "created" and t.split == {"A": 0.7, "B": 0.3} and t.started_at is None
    assert t.config.direction == "higher" and t.config.control == "A"
    with pytest.raises(StateError, match="not running"):
        tests.assign(tid, "s1")
    with pytest.raises(StateError, match="not running"):
        tests.record(tid, "A", "j", {"score": 0.5})
    assert tests.start(tid).status == "running"
    assert tests.start(tid).started_at == clock.now  # starting twice changes nothing
    with pytest.raises(InvalidArgumentError, match="no arm"):
        tests.record(tid, "C", "j", {"score": 0.5})
    for bad in ({"score": "high"}, {"speed": 1.0}, {"failed": 1}, {"wer": -0.1}):
        with pytest.raises(InvalidArgumentError):
            tests.record(tid, "A", "j", bad)
    clock.now += 10
    stopped = tests.stop(tid)
    assert stopped.status == "stopped" and stopped.end_reason == "stopped by request"
    assert tests.start(tid).started_at == clock.now - 10  # resumed; the first start is kept
    with pytest.raises(ABTestNotFoundError):
        tests.get("nope")
    with pytest.raises(StateError, match="already exists"):
        tests.create("again", {"a": "fast", "b": "balanced"}, test_id="fixed-id")
    assert tests.results(other)["winner"] is None


def test_sticky_assignment_survives_restart_and_split_change(store: Store) -> None:
    tests = ABTests(store)
    tid = tests.start(tests.create("sticky", {"A": "fast", "B": "balanced"})).test_id
    first = {s: tests.assign(tid, s) for s in (f"user{i}" for i in range(200))}
    tests.set_split(tid, {"A": 0.0, "B": 1.0})
    again = ABTests(store)  # a new manager over the same store, as after a restart
    assert {s: again.assign(tid, s) for s in first} == first
    assert {again.assign(tid, f"new{i}") for i in range(50)} == {"B"}
    assert again.get(tid).split == {"A": 0.0, "B": 1.0}
    with pytest.raises(InvalidArgumentError, match="sum to 1"):
        again.set_split(tid, {"A": 0.5, "B": 0.6})


def test_hash_split_is_deterministic_and_close_to_configured() -> None:
    split = {"A": 0.2, "B": 0.5, "C": 0.3}
    counts = Counter(assign_arm("t1", f"s{i}", split) for i in range(10_000))
    for arm, share in split.items():
        assert abs(counts[arm] / 10_000 - share) < 0.02
    assert [assign_arm("t1", f"s{i}", split) for i in range(100)] == [
        assign_arm("t1", f"s{i}", split) for i in range(100)
    ]
    # another test id reshuffles sessions independently
    moved = sum(
        assign_arm("t1", f"s{i}", split) != assign_arm("t2", f"s{i}", split) for i in range(1000)
    )
    assert moved > 300
    with pytest.raises(InvalidArgumentError):
        assign_arm("t", "s", {"A": 0.0})


def test_auto_complete_on_samples_and_duration(store: Store) -> None:
    clock = Clock()
    tests = ABTests(store, clock=clock)
    tid = tests.create("by count", {"A": "fast", "B": "balanced"}, min_samples=2, max_samples=5)
    tests.start(tid)
    for i in range(5):
        tests.record(tid, "A" if i % 2 else "B", f"j{i}", {"score": 0.5})
    done = tests.get(tid)
    assert done.status == "completed" and done.end_reason == "max_samples 5 reached"
    with pytest.raises(StateError):
        tests.record(tid, "A", "late", {"score": 0.5})
    with pytest.raises(StateError, match="completed"):
        tests.start(tid)
    with pytest.raises(StateError, match="completed"):
        tests.stop(tid)

    timed = tests.create("by time", {"A": "fast", "B": "balanced"}, max_duration_s=3600)
    tests.start(timed)
    tests.assign(timed, "early")
    clock.now += 3600
    r = tests.results(timed)
    assert r["status"] == "completed" and r["end_reason"] == "max_duration_s 3600 reached"
    assert r["elapsed_s"] == 3600
    with pytest.raises(StateError):
        tests.assign(timed, "late")


def test_results_and_winner_rules(store: Store) -> None:
    tests = ABTests(store)
    # Fixed ids: assignment hashes the test id, so a random id would make the data random too.
    tid = tests.create("winner", {"A": "fast", "B": "balanced"}, min_samples=30, test_id="w1")
    tests.start(tid)
    _feed(tests, tid, {"A": 0.6, "B": 0.7}, 20)
    early = tests.results(tid)
    assert early["winner"] is None and "minimum sample size" in early["winner_reason"]
    _feed(tests, tid, {"A": 0.6, "B": 0.7}, 200, seed=1)
    r = tests.results(tid)
    assert r["winner"] == "B" and r["min_samples_reached"]
    arms = r["arms"]
    assert arms["A"]["n"] + arms["B"]["n"] == r["n_total"] == 220
    assert arms["A"]["cost_mean"] == 1.0 and arms["B"]["cost_mean"] == 2.5
    assert 0 < arms["A"]["n_with_reference"] < arms["A"]["n"]
    assert arms["A"]["latency_p50_s"] <= arms["A"]["latency_p95_s"]
    score = r["comparisons"]["score"][0]
    assert score["welch_t"]["ci_low"] > 0 and score["msprt"]["significant"]
    assert r["comparisons"]["failure_rate"][0]["two_proportion_z"]["p_value"] > 0
    assert set(r["comparisons"]) == {"wer", "score", "latency", "cost", "failure_rate"}

    same = tests.create("a/a", {"A": "fast", "B": "fast"}, min_samples=30, test_id="aa1")
    tests.start(same)
    _feed(tests, same, {"A": 0.6, "B": 0.6}, 200, seed=2)
    rr = tests.results(same)
    assert rr["winner"] is None and "no significant difference" in rr["winner_reason"]


def test_lower_is_better_control_can_win_and_three_arms() -> None:
    rng = np.random.default_rng(9)
    cfg = ABTestConfig("lat", {"A": "fast", "B": "balanced", "C": "accurate"}, metric="latency",
                       min_samples=10)  # fmt: skip
    from whisper_cascade.abtest import ABTest

    test = ABTest("t", cfg, "running", 0.0, 0.0, None, None, cfg.split)
    means = {"A": 1.0, "B": 2.0, "C": 3.0}
    obs = [
        (arm, {"latency_s": float(rng.normal(means[arm], 0.2))})
        for _ in range(100)
        for arm in "ABC"
    ]
    r = build_results(test, obs, now=5.0)
    assert r["winner"] == "A" and r["decision_alpha"] == pytest.approx(0.025)
    means = {"A": 2.0, "B": 1.5, "C": 1.0}
    obs = [(a, {"latency_s": float(rng.normal(means[a], 0.2))}) for _ in range(100) for a in "ABC"]
    assert build_results(test, obs, now=5.0)["winner"] == "C"
    assert build_results(test, [], now=5.0)["winner"] is None
    with pytest.raises(InvalidArgumentError):
        build_results(test, [("Z", {})], now=5.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"arms": {"A": "fast"}},
        {"arms": {"A": "fast", "B": ""}},
        {"split": {"A": 1.0}},
        {"split": {"A": -0.5, "B": 1.5}},
        {"metric": "speed"},
        {"direction": "sideways"},
        {"alpha": 0.7},
        {"min_samples": 1},
        {"max_samples": 0},
        {"max_duration_s": -1},
        {"name": " "},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"name": "t", "arms": {"A": "fast", "B": "balanced"}}
    with pytest.raises(InvalidArgumentError):
        ABTestConfig(**{**base, **kwargs})  # type: ignore[arg-type]


def test_config_round_trip_and_malformed_state(tmp_path: Path) -> None:
    cfg = ABTestConfig("t", {"A": "fast", "B": "balanced"}, metric="wer", max_samples=10)
    assert ABTestConfig.from_dict(cfg.to_dict()) == cfg and cfg.direction == "lower"
    with pytest.raises(InvalidArgumentError, match="unknown"):
        ABTestConfig.from_dict({**cfg.to_dict(), "extra": 1})
    with SqliteStore(tmp_path / "s.db") as store:
        tests = ABTests(store)
        tid = tests.create_from_config(cfg)
        store.save_bandit_state(f"ab:{tid}", b"[1, 2]")
        with pytest.raises(StateError, match="malformed"):
            tests.get(tid)
        store.save_bandit_state(f"ab:{tid}", b"\xff")
        with pytest.raises(StateError, match="malformed"):
            tests.get(tid)


class SlowInsertStore(SqliteStore):
    """A real SQLite store whose observation insert takes a while, so that concurrent
    recorders overlap inside ABTests.record."""

    def record_ab_observation(
        self, observation: ABObservation, max_samples: int | None = None
    ) -> bool:
        time.sleep(0.05)
        return super().record_ab_observation(observation, max_samples)


def test_record_refused_when_another_process_filled_the_test(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        tests = ABTests(store)
        tid = tests.start(
            tests.create("full", {"A": "fast", "B": "balanced"}, max_samples=1)
        ).test_id
        # Another process took the last sample but has not marked the test completed yet.
        assert store.record_ab_observation(ABObservation(tid, "A", "other", "{}", 1.0), 1)
        assert tests.get(tid).status == "running"
        with pytest.raises(StateError, match="max_samples"):
            tests.record(tid, "B", "mine", {"score": 0.5})
        assert len(store.ab_observations(tid)) == 1
        assert tests.get(tid).status == "completed"


def test_concurrent_records_never_exceed_max_samples(tmp_path: Path) -> None:
    store = SlowInsertStore(tmp_path / "slow.db")
    try:
        tests = ABTests(store)
        tid = tests.start(
            tests.create("race", {"A": "fast", "B": "balanced"}, max_samples=2)
        ).test_id

        def record(i: int) -> bool:
            try:
                tests.record(tid, "A", f"job{i}", {"score": 0.5})
            except StateError:
                return False
            return True

        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(record, range(6)))
        assert sorted(outcomes) == [False] * 4 + [True] * 2
        assert len(store.ab_observations(tid)) == 2
        assert tests.get(tid).status == "completed"
    finally:
        store.close()
