"""Prometheus metrics of one service instance (its own registry, names ``whisper_cascade_*``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from whisper_cascade.results import CascadeResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_FAILED_REASONS = ("model_failed", "circuit_open")


class Metrics:
    """Counters, histograms and gauges updated by the routes and the worker pool."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "whisper_cascade_requests",
            "HTTP requests by endpoint (route template) and status code",
            ["endpoint", "status"],
            registry=r,
        )
        self.request_latency = Histogram(
            "whisper_cascade_request_latency_seconds",
            "HTTP request latency by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.transcription_latency = Histogram(
            "whisper_cascade_transcription_latency_seconds",
            "Cascade processing time by final model",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.transcriptions = Counter(
            "whisper_cascade_transcriptions",
            "Finished transcriptions by initial and final model",
            ["initial_model", "final_model"],
            registry=r,
        )
        self.escalations = Counter(
            "whisper_cascade_escalations",
            "Rungs tried after the first, by escalation reason",
            ["reason"],
            registry=r,
        )
        self.model_failures = Counter(
            "whisper_cascade_model_failures",
            "Rungs skipped because the model failed or its breaker was open (fallbacks)",
            ["model", "reason"],
            registry=r,
        )
        self.errors = Counter(
            "whisper_cascade_errors",
            "Requests answered with an error, by error type",
            ["type"],
            registry=r,
        )
        self.rejected = Counter(
            "whisper_cascade_queue_rejections",
            "Requests refused with 429 because the queue was full",
            registry=r,
        )
        self.time_saved = Gauge(
            "whisper_cascade_time_saved_seconds",
            "Net processing time saved against the largest model (negative: lost)",
            registry=r,
        )
        self.audio_seconds = Counter(
            "whisper_cascade_audio_seconds",
            "Seconds of audio transcribed",
            registry=r,
        )
        self.queue_depth = Gauge(
            "whisper_cascade_queue_depth", "Admitted requests waiting for a worker", registry=r
        )
        self.running = Gauge(
            "whisper_cascade_running", "Requests being processed by a worker", registry=r
        )
        self.breaker_open = Gauge(
            "whisper_cascade_breaker_open",
            "1 when the model's circuit breaker is not closed",
            ["model"],
            registry=r,
        )
        self.breaker_failures = Gauge(
            "whisper_cascade_breaker_failures",
            "Total failures the model's breaker has seen",
            ["model"],
            registry=r,
        )
        self.ab_assignments = Counter(
            "whisper_cascade_ab_assignments",
            "Requests routed to an A/B test arm",
            ["test", "arm"],
            registry=r,
        )

    def observe_result(self, result: CascadeResult) -> None:
        """Record one finished transcription."""
        ms = result.model_selection
        self.transcriptions.labels(ms["initial_model"], ms["final_model"]).inc()
        self.transcription_latency.labels(ms["final_model"]).observe(ms["processing_time_s"])
        if ms["escalation_count"]:
            self.escalations.labels(ms["escalation_reason"]).inc(ms["escalation_count"])
        for step in ms["decision_history"]:
            if step["reason"] in _FAILED_REASONS:
                self.model_failures.labels(step["model"], step["reason"]).inc()
        self.time_saved.inc(float(ms["processing_time_saved_s"]))
        self.audio_seconds.inc(float(result.info.get("duration") or 0.0))

    def observe_breakers(self, breakers: Mapping[str, Mapping[str, Any]]) -> None:
        """Copy breaker states into the gauges (at scrape time)."""
        for model, snap in breakers.items():
            self.breaker_open.labels(model).set(0.0 if snap["state"] == "closed" else 1.0)
            self.breaker_failures.labels(model).set(float(snap["total_failures"]))

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
