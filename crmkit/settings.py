"""Settings shared by every service, read from the environment by pydantic-settings.

Each service has its own prefix (``CRM_CUSTOMER_``, ``CRM_RATING_`` …); a value that every service
shares (the broker address, the token key) may also be given once with the suite prefix ``CRM_``.
The service prefix wins over the suite prefix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# Local data of the embedded default (SQLite files, development keys, the run environment).
VAR_DIR = Path(os.environ.get("CRM_VAR_DIR", REPO_ROOT / "var"))
SUITE_PREFIX = "CRM_"


class KafkaSettings(BaseSettings):
    """How the suite talks to its Kafka-protocol broker (embedded Tansu, or Apache Kafka)."""

    model_config = SettingsConfigDict(env_prefix="CRM_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:19092"
    # Topics are ``<namespace>.<service>``, dead letters ``<namespace>.dlq.<service>`` and
    # consumer groups ``<namespace>.<service>``: several environments can share one cluster.
    namespace: str = "crm"
    topic_partitions: int = 4
    replication_factor: int = 1
    client_id_prefix: str = "crm"
    # Group joins on Tansu take its fixed 3 s only with short session/heartbeat timeouts.
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 30000
    # A waiting fetch is not woken by new data on Tansu: keep the wait short for latency.
    fetch_max_wait_ms: int = 5
    # A consumer that has read nothing for ``idle_after_s`` waits this long per fetch instead:
    # an idle consumer polling every 5 ms costs its process CPU and the GIL (a relay thread in
    # the same process waits for it), while the first event after a pause waits at most this.
    idle_fetch_max_wait_ms: int = 200
    idle_after_s: float = 1.0
    reconnect_backoff_max_ms: int = 1000
    request_timeout_ms: int = 10000
    max_block_ms: int = 5000
    linger_ms: int = 0

    def topic(self, stream: str) -> str:
        """The topic of a publishing service (its stream of events)."""
        return f"{self.namespace}.{stream}"

    def dead_letter_topic(self, service: str) -> str:
        """Where a service's consumers put the events they cannot apply."""
        return f"{self.namespace}.dlq.{service}"


class SuiteSettings(BaseSettings):
    """What every process of the suite reads: token verification and logging.

    A subclass sets its own prefix (``CRM_CUSTOMER_``, ``CRM_GATEWAY_`` …); a value may also be
    given once for the whole suite with ``CRM_``. The own prefix wins.
    """

    model_config = SettingsConfigDict(extra="ignore")

    jwt_public_key_file: str = str(VAR_DIR / "keys" / "dev-jwt.pub.pem")
    jwt_jwks_url: str = ""
    jwt_issuer: str = "crm-dev-issuer"
    jwt_audience: str = "crm"
    log_level: str = "INFO"
    log_json: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        suite_env = EnvSettingsSource(settings_cls, env_prefix=SUITE_PREFIX)
        return init_settings, env_settings, suite_env, dotenv_settings, file_secret_settings


class ServiceSettings(SuiteSettings):
    """Base settings of one service; subclasses set ``service_name`` and the env prefix."""

    service_name: ClassVar[str] = "service"

    database_url: str = ""
    port: int = 8000
    # Relay and consumers run inside the API process in the embedded mode; production runs them in
    # a separate worker process (``python -m services.<name>.worker``) and sets this to false.
    embedded_workers: bool = True
    # An API process without embedded workers serves while the broker is away (the outbox
    # buffers); production sets this to false so a Kafka outage does not take the API out.
    readiness_requires_broker: bool = True
    # The worker process serves its Prometheus metrics on this port (0: not at all).
    worker_metrics_port: int = 9100
    run_migrations_on_start: bool = True
    relay_batch_size: int = 500
    # A relay batch is also bounded by size, so that each partition's share of it travels as one
    # producer batch: the broker takes or refuses it whole, and a refused part never lets a later
    # event of the same key through ahead of it.
    relay_batch_max_bytes: int = 512 * 1024
    # Fallback poll of the outbox when no commit wakes the relay (SQLite with a separate worker).
    relay_poll_interval_s: float = 0.05
    relay_broker_check_interval_s: float = 2.0
    # After the broker comes back empty, events published this recently are published again.
    relay_republish_window_s: float = 3600.0
    # Published outbox rows and inbox entries are kept this long (dedupe horizon), then pruned.
    retention_s: float = 7 * 24 * 3600.0
    consumer_max_attempts: int = 3
    consumer_retry_backoff_s: float = 0.2
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    def model_post_init(self, context: Any) -> None:
        if not self.database_url:
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            self.database_url = f"sqlite:///{VAR_DIR / (self.service_name + '.db')}"

    @property
    def topic(self) -> str:
        """The topic this service publishes its events to."""
        return self.kafka.topic(self.service_name)

    @property
    def dead_letter_topic(self) -> str:
        """Where this service's consumers put the events they cannot apply."""
        return self.kafka.dead_letter_topic(self.service_name)
