"""Prometheus metrics of the scheduler (`schedule --metrics-port`), served on 127.0.0.1.

What a monitoring system needs of an unattended daemon: crawls run and failed, what they
fetched and stored, the spool's backlog, each outlet's last success and its health flags. The
figures come from each finished crawl's run record, so they are the archive's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from crawler.store.run_records import parse_iso
from crawler.store.spool import Spool


class ScheduleMetrics:
    def __init__(self, port: int, spool: Spool) -> None:
        self.registry = CollectorRegistry()
        labels = ["outlet"]
        self.crawls = Counter("newsarchive_crawls", "Crawls that ended, by result",
                              [*labels, "result"], registry=self.registry)
        self.pages = Counter("newsarchive_pages", "Pages fetched", labels, registry=self.registry)
        self.articles = Counter("newsarchive_articles", "Text records written (new and edited)",
                                labels, registry=self.registry)
        self.bytes = Counter("newsarchive_warc_bytes", "WARC bytes stored by the outlet's crawls",
                             labels, registry=self.registry)
        self.last_success = Gauge("newsarchive_last_success_timestamp_seconds",
                                  "When the outlet's last crawl that exited 0 ended", labels,
                                  registry=self.registry)
        self.health = Gauge("newsarchive_health_flag",
                            "1 when the outlet's last crawl raised this health flag", [
                                *labels, "flag"], registry=self.registry)
        self.backlog = Gauge("newsarchive_spool_files", "Files waiting in the spool for the store",
                             registry=self.registry)
        self.backlog.set_function(lambda: len(spool.pending()))
        self.server, self.thread = start_http_server(port, addr="127.0.0.1",
                                                     registry=self.registry)

    def crawl_ended(self, outlet: str, code: int, record: Mapping[str, Any] | None) -> None:
        """Count a crawl that ended with `code`; `record` is its run record (None when it left
        none)."""
        self.crawls.labels(outlet, "ok" if code == 0 else "failed").inc()
        if record is None:
            return
        figures = (record.get("health") or {}).get(outlet) or {}
        self.pages.labels(outlet).inc(figures.get("fetched", 0))
        self.articles.labels(outlet).inc(figures.get("texts", 0))
        self.bytes.labels(outlet).inc((record.get("counts") or {}).get("warc_bytes", 0))
        if code == 0 and record.get("end"):
            self.last_success.labels(outlet).set(parse_iso(record["end"]).timestamp())
        flags = figures.get("flags") or {}
        for metric in self.health.collect():  # a flag that cleared goes back to 0
            for sample in metric.samples:
                if sample.labels["outlet"] == outlet:
                    self.health.labels(outlet, sample.labels["flag"]).set(0)
        for flag in flags:
            self.health.labels(outlet, flag).set(1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
