"""The Prometheus exposition of ``GET /metrics``: a Collector over numbers read from Redis.

prometheus-client's registry calls ``Collector.collect()`` synchronously, and the event loop
must not block on Redis, so the route first reads a ``MetricsSnapshot`` (``JobRunner.metrics``:
counters and histograms recorded by whoever submits and runs jobs, queue gauges from arq's zsets
and the worker registry) and this Collector turns it into metric families. The text (or
OpenMetrics, when the scraper asks for it) is prometheus-client's own.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from jobrunner.domain.durations import cumulative
from jobrunner.store.metrics import MetricsSnapshot

__all__ = ["ClusterCollector", "exposition"]


class ClusterCollector(Collector):
    """Every jobrunner metric, from one snapshot. The ``queue`` label is the plan's queue."""

    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield self._durations()
        yield from self._queue_gauges()
        yield from self._worker_gauges()

    def _counters(self) -> Iterator[Metric]:
        submitted = CounterMetricFamily(
            "jobrunner_jobs_submitted", "Jobs created, by queue and task.", labels=["queue", "task"]
        )
        for (queue, task), count in sorted(self.snapshot.submitted.items()):
            submitted.add_metric([queue, task], count)
        yield submitted
        completed = CounterMetricFamily(
            "jobrunner_jobs_completed",
            "Jobs that ended, by queue and terminal status (succeeded/failed/cancelled/expired).",
            labels=["queue", "status"],
        )
        for (queue, status), count in sorted(self.snapshot.completed.items()):
            completed.add_metric([queue, status], count)
        yield completed

    def _durations(self) -> Metric:
        family = HistogramMetricFamily(
            "jobrunner_job_duration_seconds",
            "Run time of each finished attempt (succeeded, failed or retried), by task.",
            labels=["task"],
        )
        for task, entry in sorted(self.snapshot.durations.items()):
            buckets = cumulative(entry.buckets, entry.count)
            family.add_metric([task], buckets, entry.total_seconds)
        return family

    def _queue_gauges(self) -> Iterator[Metric]:
        gauges = {
            "queued": GaugeMetricFamily(
                "jobrunner_queue_length", "Jobs due and waiting for a worker.", labels=["queue"]
            ),
            "running": GaugeMetricFamily(
                "jobrunner_jobs_running", "Jobs being run by live workers.", labels=["queue"]
            ),
            "deferred": GaugeMetricFamily(
                "jobrunner_jobs_deferred",
                "Jobs scheduled for later or waiting out a retry's backoff.",
                labels=["queue"],
            ),
            "workers": GaugeMetricFamily(
                "jobrunner_active_workers", "Live workers consuming the queue.", labels=["queue"]
            ),
        }
        for stats in self.snapshot.queues:
            for field, family in gauges.items():
                family.add_metric([stats.plan], getattr(stats, field))
        yield from gauges.values()

    def _worker_gauges(self) -> Iterator[Metric]:
        workers = self.snapshot.workers
        yield GaugeMetricFamily("jobrunner_workers", "Live worker processes.", value=len(workers))
        yield GaugeMetricFamily(
            "jobrunner_worker_slots",
            "Jobs the live workers can run at once (their summed concurrency).",
            value=sum(int(w.get("concurrency", 0)) for w in workers),
        )
        yield GaugeMetricFamily(
            "jobrunner_webhooks_pending",
            "Ended jobs whose webhook delivery is not enqueued yet (the callbacks outbox; the "
            "reconcile cron enqueues what a dead process left).",
            value=self.snapshot.webhooks_pending,
        )


def exposition(snapshot: MetricsSnapshot, accept: str | None) -> tuple[bytes, str]:
    """The body and content type for a scraper sending ``accept``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(snapshot))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
