"""The store: the same tests against SQLite and a throwaway PostgreSQL server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pg_support import Backend, raw_store
from whisper_cascade.errors import InvalidArgumentError, StateError
from whisper_cascade.store import (
    ABObservation,
    ABTestRecord,
    DecisionRecord,
    JobRecord,
    QualityRecord,
    ServiceJobRecord,
    SpoolingStore,
    SqliteStore,
    StoreUnavailableError,
    open_store,
)
from whisper_cascade.store._sql import MIGRATIONS, SqlStore


def _job(i: int, t: float = 1000.0) -> JobRecord:
    return JobRecord(
        job_id=f"job{i}", model="tiny.en", audio_duration_s=12.5, processing_time_s=1.25,
        score=0.875, content_class="short/clean/simple", cpu_seconds=2.5,
        peak_memory_bytes=3 * 2**31, wer=0.1 if i % 2 else None, created_at=t + i,
    )  # fmt: skip


def test_migrations_are_idempotent(backend: Backend) -> None:
    with raw_store(backend) as first:
        assert first.schema_version() == len(MIGRATIONS)
        first.record_job(_job(1))
    with raw_store(backend) as second:
        assert second.migrate() == len(MIGRATIONS)
        assert second.schema_version() == len(MIGRATIONS)
        assert second.count("jobs") == 1
        assert second.count("schema_version") == len(MIGRATIONS)


def test_records_round_trip(backend: Backend) -> None:
    with raw_store(backend) as store:
        jobs = [_job(i) for i in range(3)]
        for j in jobs:
            store.record_job(j)
        assert store.jobs_since(0) == jobs
        assert store.jobs_since(1001.5) == jobs[2:]
        dec = DecisionRecord("job1", "tiny.en", "base.en", "low score", '{"score": 0.4}', 3.5, 7.0)
        store.record_decision(dec)
        assert store.decisions_since(7.0) == [dec]
        assert store.decisions_since(7.5) == []
        q1 = QualityRecord("job1", "base.en", 0.9, 0.05, True, 5.0)
        q2 = QualityRecord("job2", "base.en", 0.7, None, False, 6.0)
        store.record_quality(q1)
        store.record_quality(q2)
        assert store.quality_since(0) == [q1, q2]


def test_analysis_cache_and_bandit_state(backend: Backend) -> None:
    with raw_store(backend) as store:
        assert store.get_analysis("abc") is None
        store.put_analysis("abc", '{"snr": 12}')
        store.put_analysis("abc", '{"snr": 13}')
        assert store.get_analysis("abc") == '{"snr": 13}'
        assert store.load_bandit_state("short") is None
        state = bytes(range(256)) + b"\x00\xff"
        store.save_bandit_state("short", state)
        assert store.load_bandit_state("short") == state
        store.save_bandit_state("short", b"v2")
        assert store.load_bandit_state("short") == b"v2"


def test_model_registry(backend: Backend) -> None:
    with raw_store(backend) as store:
        store.register_model("mine", "/m/v1.bin", "aa" * 32, "english", "1")
        store.register_model("mine", "/m/v1.bin", "aa" * 32, "english", "1")  # same: no-op
        store.register_model("mine", "/m/v2.bin", "bb" * 32, "english", "2")
        with pytest.raises(StateError):
            store.register_model("mine", "/m/other.bin", "cc" * 32, "english", "1")
        assert [(m.version, m.state) for m in store.list_models("mine")] == [
            ("1", "registered"), ("2", "registered")
        ]  # fmt: skip
        store.set_deployment("mine", "1", "active")
        store.set_deployment("mine", "2", "active")
        states = {m.version: m.state for m in store.list_models()}
        assert states == {"1": "retired", "2": "active"}
        with pytest.raises(StateError):
            store.set_deployment("mine", "9", "active")
        with pytest.raises(InvalidArgumentError):
            store.set_deployment("mine", "1", "bogus")


def test_ab_tables(backend: Backend) -> None:
    with raw_store(backend) as store:
        test = ABTestRecord("t1", "tiny vs base", '["a", "b"]', '{"split": 0.5}', "created", 1.0)
        store.create_ab_test(test)
        assert store.get_ab_test("t1") == test
        assert store.get_ab_test("nope") is None
        store.set_ab_status("t1", "running")
        got = store.get_ab_test("t1")
        assert got is not None and got.status == "running"
        with pytest.raises(StateError):
            store.set_ab_status("nope", "running")
        with pytest.raises(InvalidArgumentError):
            store.set_ab_status("t1", "bogus")
        assert store.assign_ab("t1", "s1", "a") == "a"
        assert store.assign_ab("t1", "s1", "b") == "a"  # sticky
        obs = [ABObservation("t1", "a", f"j{i}", '{"wer": 0.1}', float(i)) for i in range(3)]
        for o in obs:
            store.record_ab_observation(o)
        assert store.ab_observations("t1") == obs


def test_ab_observation_cap_holds_across_connections(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers on separate connections (as separate processes would be) never overshoot
    ``max_samples``, even when each one dawdles between counting and inserting."""
    with raw_store(backend) as store:
        store.create_ab_test(ABTestRecord("cap", "cap", '["a"]', "{}", "running", 1.0))
        assert store.record_ab_observation(ABObservation("cap", "a", "j0", "{}", 1.0), 3)
    plain_exec = SqlStore._exec

    def dawdling_exec(self: SqlStore, cur: Any, sql: str, params: Any = ()) -> None:
        plain_exec(self, cur, sql, params)
        if "COUNT(*) FROM ab_observations" in sql:
            time.sleep(0.05)

    monkeypatch.setattr(SqlStore, "_exec", dawdling_exec)

    def writer(i: int) -> bool:
        with raw_store(backend) as own:
            return own.record_ab_observation(ABObservation("cap", "a", f"j{i}", "{}", 2.0), 3)

    with ThreadPoolExecutor(6) as pool:
        stored = list(pool.map(writer, range(1, 7)))
    assert sorted(stored) == [False] * 4 + [True] * 2
    with raw_store(backend) as store:
        assert len(store.ab_observations("cap")) == 3
        # Without a cap the insert always happens.
        assert store.record_ab_observation(ABObservation("cap", "a", "j9", "{}", 3.0))
        assert len(store.ab_observations("cap")) == 4


def test_spool_while_down_then_replay(backend: Backend, tmp_path: Path) -> None:
    with open_store(backend.location, spool_dir=tmp_path / "spool") as first:
        first.record_job(_job(0))
    backend.down()
    try:
        store = open_store(backend.location, spool_dir=tmp_path / "spool")  # opening won't fail
        store.record_job(_job(1))  # never raises
        store.save_bandit_state("b", b"\x01\x02")
        store.record_decision(DecisionRecord("job1", "a", "b", "r", "{}", 1.0, 5.0))
        assert store.pending() == 3
        with pytest.raises(StoreUnavailableError):
            store.flush()
        with pytest.raises(StoreUnavailableError):
            store.jobs_since(0)
        store.close()  # a CLI exiting while the store is down: the spool survives
    finally:
        backend.up()
    again = open_store(backend.location, spool_dir=tmp_path / "spool")
    assert again.pending() == 3
    again.record_job(_job(2))  # replays the spool first, in order
    assert again.pending() == 0
    assert [j.job_id for j in again.jobs_since(0)] == ["job0", "job1", "job2"]
    assert again.load_bandit_state("b") == b"\x01\x02"
    assert len(again.decisions_since(0)) == 1
    again.close()


def test_spool_flush_and_poisoned_entry(backend: Backend, tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    spool.write_text(
        '{"op": "set_deployment", "args": {"name": "x", "version": "1", "state": "active"}}\n'
        '{"op": "no_such_op", "args": {}}\n'
        '{"op": "put_analysis", "args": {"audio_hash": "h", "features_json": "{}"}}\n'
    )
    store = SpoolingStore(lambda: raw_store(backend), spool)
    assert store.flush() == 3  # the unknown model is dropped, the rest replays
    assert store.get_analysis("h") == "{}"
    assert store.flush() == 0
    store.close()


def test_every_write_spools_and_replays(backend: Backend, tmp_path: Path) -> None:
    with open_store(backend.location, spool_dir=tmp_path) as first:
        first.register_model("m", "/m.bin", "ab" * 32, "english", "1")
    backend.down()
    try:
        down = open_store(backend.location, spool_dir=tmp_path)
        down.record_quality(QualityRecord("j", "m", 0.5, None, False, 1.0))
        down.put_analysis("h", '{"noise": 1}')
        down.register_model("m", "/m2.bin", "cd" * 32, "english", "2")
        down.set_deployment("m", "2", "canary")
        down.create_ab_test(ABTestRecord("t", "n", "[]", "{}", "created", 1.0))
        down.set_ab_status("t", "running")
        assert down.assign_ab("t", "s", "b") == "b"
        down.record_ab_observation(ABObservation("t", "b", "j", "{}", 2.0))
        assert down.pending() == 8
        down.close()
    finally:
        backend.up()
    with open_store(backend.location, spool_dir=tmp_path) as up:
        assert up.flush() == 8
        assert up.quality_since(0) == [QualityRecord("j", "m", 0.5, None, False, 1.0)]
        assert up.get_analysis("h") == '{"noise": 1}'
        assert {m.version: m.state for m in up.list_models("m")} == {
            "1": "registered",
            "2": "canary",
        }
        test = up.get_ab_test("t")
        assert test is not None and test.status == "running"
        assert up.assign_ab("t", "s", "a") == "b"
        assert [o.job_id for o in up.ab_observations("t")] == ["j"]


def test_service_jobs(backend: Backend, tmp_path: Path) -> None:
    with raw_store(backend) as store:
        store.create_service_job(ServiceJobRecord("j1", "queued", '{"preset": null}', None, None,
                                                  1.0, 1.0))  # fmt: skip
        store.create_service_job(ServiceJobRecord("j1", "running", "{}"))  # id exists: kept
        got = store.get_service_job("j1")
        assert got == ServiceJobRecord("j1", "queued", '{"preset": null}', None, None, 1.0, 1.0)
        store.update_service_job("j1", "done", result_json='{"text": "x"}', updated_at=2.0)
        got = store.get_service_job("j1")
        assert got is not None and (got.status, got.result_json, got.updated_at) == (
            "done",
            '{"text": "x"}',
            2.0,
        )
        assert store.get_service_job("nope") is None
        assert store.count("service_jobs") == 1
        with pytest.raises(StateError):
            store.update_service_job("nope", "failed")
        with pytest.raises(InvalidArgumentError):
            store.update_service_job("j1", "exploded")
        with pytest.raises(InvalidArgumentError):
            store.create_service_job(ServiceJobRecord("j2", "exploded", "{}"))
    backend.down()
    try:
        down = open_store(backend.location, spool_dir=tmp_path)
        down.create_service_job(ServiceJobRecord("j3", "queued", "{}", created_at=5.0))
        down.update_service_job("j3", "failed", error_json='{"type": "AudioError"}')
        assert down.pending() == 2
        with pytest.raises(StoreUnavailableError):
            down.get_service_job("j3")
        down.close()
    finally:
        backend.up()
    with open_store(backend.location, spool_dir=tmp_path) as up:
        assert up.flush() == 2
        got = up.get_service_job("j3")
        assert got is not None and got.status == "failed" and got.created_at == 5.0
        assert got.error_json == '{"type": "AudioError"}'


def test_backend_lost_while_open(backend: Backend, tmp_path: Path) -> None:
    if backend.kind == "sqlite":
        pytest.skip("an open SQLite file cannot be taken away from its connection")
    store = open_store(backend.location, spool_dir=tmp_path)
    store.record_job(_job(0))
    backend.down()
    try:
        store.record_job(_job(1))
        assert store.pending() == 1
    finally:
        backend.up()
    store.record_job(_job(2))
    assert [j.job_id for j in store.jobs_since(0)] == ["job0", "job1", "job2"]
    store.close()


def test_threads_share_a_store(backend: Backend) -> None:
    import threading

    with raw_store(backend) as store:

        def work(k: int) -> None:
            for i in range(20):
                store.record_job(_job(100 * k + i))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.count("jobs") == 80


def test_env_override_and_default_location(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHISPER_CASCADE_DB", backend.location)
    with open_store(spool_dir=tmp_path) as store:
        store.record_job(_job(5))
    with raw_store(backend) as raw:
        assert [j.job_id for j in raw.jobs_since(0)] == ["job5"]
    monkeypatch.delenv("WHISPER_CASCADE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with open_store() as store:
        store.put_analysis("k", "{}")
    assert (tmp_path / "xdg" / "whisper-cascade" / "store.db").is_file()


_WRITER = textwrap.dedent(
    """
    import sys
    from whisper_cascade.store import JobRecord, SqliteStore
    store = SqliteStore(sys.argv[1])
    i = 0
    while True:
        store.record_job(JobRecord(f"j{i}", "m", 1.0, 1.0, 1.0, "c", 1.0, 1))
        i += 1
        print(i, flush=True)
    """
)


def test_sqlite_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    SqliteStore(db).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    committed = 0
    deadline = time.monotonic() + 60
    while committed < 200 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        committed = int(line)
    child.send_signal(signal.SIGKILL)
    rest = child.stdout.read().split()  # lines printed before the kill were committed too
    child.wait()
    committed = max([committed, *map(int, rest)])
    assert committed >= 200
    with SqliteStore(db) as store:
        assert store.integrity_check() == "ok"
        assert store.count("jobs") >= committed
