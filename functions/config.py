"""Runtime configuration, read once from the environment.

One place names every knob so the README's configuration table and the code cannot drift;
tests change settings with environment variables and `reset_settings()`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache

EMBEDDED_MEMORY_LIMIT = "256MB"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Topics:
    kpi_events: str = "kpi-events"
    fraud_signals: str = "fraud-signals"
    spillover_events: str = "spillover-events"
    exposures: str = "exposures"
    sweep_ticks: str = "sweep-ticks"
    kill_switch: str = "kill-switch"
    experiment_state: str = "experiment-state"
    ledger_checkpoints: str = "ledger-checkpoints"
    ledger_alerts: str = "ledger-alerts"
    quarantine: str = "quarantined-events"
    # what a Pub/Sub-triggered function failed max-delivery-attempts times (held 7 days for replay)
    dead_letter: str = "dead-letter"
    # metric-store landing (METRIC_LANDING=pubsub): one topic per landing table, one dead letter
    landing_kpi_events: str = "landing-kpi-events"
    landing_exposures: str = "landing-exposures"
    landing_fraud_flags: str = "landing-fraud-flags"
    landing_links: str = "landing-links"
    landing_dead_letter: str = "landing-dead-letter"

    def all(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Settings:
    project_id: str
    region: str
    topics: Topics
    topic_prefix: str
    max_body_bytes: int
    max_event_age_seconds: int
    base_currency: str
    currency_rates: dict[str, float] = field(default_factory=dict)
    ledger_signing_key: str = ""
    ledger_key_file: str = ".run/ledger-dev-key.pem"
    ledger_keyring: str = ""
    config_cache_seconds: float = 5.0
    log_level: str = "INFO"
    sweep_window_seconds: int = 300
    sweep_workers: int = 8
    metric_store: str = "embedded"  # embedded (DuckDB in-process) | bigquery
    metric_store_path: str = ":memory:"  # the embedded store's file (":memory:": this process only)
    metric_dataset: str = "offers_metrics"  # BigQuery dataset of the landing tables
    metric_store_threads: int = 1  # the embedded store's threads (1: bit-for-bit reproducible sums)
    # the embedded store's memory limit: past it the engine spills to disk instead of growing ("80%": DuckDB's own
    # default, most of the machine's memory). 256MB keeps an analysis of 1M units per arm under 500 MB of RSS.
    metric_store_memory: str = EMBEDDED_MEMORY_LIMIT
    ga4_dataset: str = "analytics_demo"  # the Firebase / GA4 export's dataset (catalog metrics ga4.*)
    metric_location: str = ""  # BigQuery location of that dataset ("": the client's default, US)
    metric_landing: str = "direct"  # direct (append from the handler) | pubsub (landing topics)
    # days of history before an experiment's start from which an analysis reads a MEAN KPI's
    # skewness when the KPI does not configure one (0: never; docs/statistics.md, "Skewness gate")
    analysis_history_days: int = 28

    def topic(self, name: str) -> str:
        """Full topic id (prefix lets parallel tests use their own topics)."""
        return f"{self.topic_prefix}{getattr(self.topics, name)}"

    def topic_path(self, name: str) -> str:
        return f"projects/{self.project_id}/topics/{self.topic(name)}"


def _project_id() -> str:
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT"):
        if os.environ.get(name):
            return os.environ[name]
    return "demo-offers"


@lru_cache(maxsize=1)
def settings() -> Settings:
    rates = json.loads(_env("CURRENCY_RATES", '{"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}'))
    return Settings(
        project_id=_project_id(),
        region=_env("FUNCTION_REGION", "europe-west1"),
        topics=Topics(),
        topic_prefix=_env("TOPIC_PREFIX", ""),
        max_body_bytes=int(_env("MAX_BODY_BYTES", str(2 * 1024 * 1024))),
        max_event_age_seconds=int(_env("MAX_EVENT_AGE_SECONDS", str(3 * 24 * 3600))),
        base_currency=_env("BASE_CURRENCY", "USD"),
        currency_rates={k.upper(): float(v) for k, v in rates.items()},
        ledger_signing_key=_env("LEDGER_SIGNING_KEY", ""),
        ledger_key_file=_env("LEDGER_KEY_FILE", ".run/ledger-dev-key.pem"),
        ledger_keyring=_env("LEDGER_KEYRING", ""),
        config_cache_seconds=float(_env("CONFIG_CACHE_SECONDS", "5")),
        log_level=_env("LOG_LEVEL", "INFO"),
        sweep_window_seconds=int(_env("SWEEP_WINDOW_SECONDS", "300")),
        sweep_workers=int(_env("SWEEP_WORKERS", "8")),
        metric_store=_env("METRIC_STORE", "embedded"),
        metric_store_path=_env("METRIC_STORE_PATH", ":memory:"),
        metric_dataset=_env("METRIC_DATASET", "offers_metrics"),
        metric_store_threads=int(_env("METRIC_STORE_THREADS", "1")),
        metric_store_memory=_env("METRIC_STORE_MEMORY", EMBEDDED_MEMORY_LIMIT),
        ga4_dataset=_env("GA4_DATASET", "analytics_demo"),
        metric_location=_env("METRIC_LOCATION", ""),
        metric_landing=_env("METRIC_LANDING", "direct"),
        analysis_history_days=int(_env("ANALYSIS_HISTORY_DAYS", "28")),
    )


def reset_settings() -> None:
    settings.cache_clear()
