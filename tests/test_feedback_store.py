"""Feedback references in the store, on SQLite and PostgreSQL, and through the spool."""

from __future__ import annotations

from pathlib import Path

from pg_support import Backend, raw_store
from whisper_cascade.store import FeedbackRecord, open_store


def test_feedback_round_trip_and_dedup(backend: Backend) -> None:
    with raw_store(backend) as store:
        assert store.feedback() == []
        a = FeedbackRecord("h1", "/a.wav", "turn on the lights", 10.0)
        b = FeedbackRecord("h1", "/a.wav", "turn off the lights", 11.0)
        c = FeedbackRecord("h2", "/b.wav", "turn on the lights", 12.0)
        for rec in (a, b, c):
            store.add_feedback(rec)
        store.add_feedback(FeedbackRecord("h1", "/copy.wav", "turn on the lights", 13.0))
        assert store.feedback() == [a, b, c]
        assert store.count("feedback") == 3


def test_feedback_is_spooled_while_down(backend: Backend, tmp_path: Path) -> None:
    with open_store(backend.location, spool_dir=tmp_path) as first:
        first.add_feedback(FeedbackRecord("h0", "/z.wav", "first", 1.0))
    backend.down()
    try:
        down = open_store(backend.location, spool_dir=tmp_path)
        down.add_feedback(FeedbackRecord("h1", "/a.wav", "set a timer", 2.0))
        assert down.pending() == 1
        down.close()
    finally:
        backend.up()
    with open_store(backend.location, spool_dir=tmp_path) as up:
        assert up.flush() == 1
        assert [r.reference for r in up.feedback()] == ["first", "set a timer"]
