"""Kafka client construction with the settings the suite relies on, and topic administration.

Facts of the embedded broker that shape these settings: it would auto-create unknown topics with
its own partition count, so every client refuses auto-creation and topics are created explicitly;
an idempotent producer cannot survive a broker restart, so producers are plain with one request in
flight per connection (order per key holds) and the outbox re-sends what was not acknowledged.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.metrics.stats.total import Total
from kafka.serializer import Serializer

from crmkit.settings import KafkaSettings

log = logging.getLogger(__name__)


def _common(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": f"{settings.client_id_prefix}-{client_id}",
        "reconnect_backoff_max_ms": settings.reconnect_backoff_max_ms,
        "request_timeout_ms": settings.request_timeout_ms,
    }


class _KeySerializer(Serializer):  # type: ignore[misc]
    """Keys are customer ids (text) on the suite's topics."""

    def serialize(self, topic: str, headers: Any, data: str | None) -> bytes | None:
        return data.encode() if data is not None else None


def make_producer(settings: KafkaSettings, client_id: str, **overrides: Any) -> KafkaProducer:
    """A keyed, acks=all producer that keeps per-key order without idempotence."""
    config: dict[str, Any] = {
        **_common(settings, client_id),
        "acks": "all",
        "enable_idempotence": False,
        "max_in_flight_requests_per_connection": 1,
        "retries": 3,
        "linger_ms": settings.linger_ms,
        "max_block_ms": settings.max_block_ms,
        "allow_auto_create_topics": False,
        "key_serializer": _KeySerializer(),
    }
    config.update(overrides)
    return KafkaProducer(**config)


def make_consumer(
    settings: KafkaSettings, client_id: str, group_id: str | None, **overrides: Any
) -> KafkaConsumer:
    """A consumer with manual commits and the timeouts that make group joins take seconds.

    The services' consumers pass ``group_id=None`` and assign their partitions themselves.
    """
    config: dict[str, Any] = {
        **_common(settings, client_id),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "allow_auto_create_topics": False,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
    }
    config.update(overrides)
    return KafkaConsumer(**config)


class ConnectionCounter:
    """Counts the broker connections a client has opened since it was built.

    A client that reconnected may be talking to a broker that restarted empty: a consumer then
    fetches the new topic at its old position before its metadata shows the new topic id, and a
    producer writes to topics the broker may not have created yet. A changed count tells the
    consumer to check the topic ids before applying what the poll returned, and the relay to
    check them before it sends. kafka-python records connections on a sensor of the client's
    metrics; a cumulative stat is added to it (the stock ones are windowed rates).
    """

    def __init__(self, client: KafkaConsumer | KafkaProducer) -> None:
        registry = client._metrics  # the client's metrics registry (no public accessor)
        if registry is None:
            raise RuntimeError("the client was built without metrics")
        name = registry.metric_name(
            "connection-creation-total", "crm-consumer-metrics", "Connections opened so far."
        )
        registry.sensor("connections-created").add(name, Total())
        self._metric = registry.metrics[name]
        self._seen = self.value()

    def value(self) -> int:
        return int(self._metric.value())

    def changed(self) -> bool:
        """True when a connection was opened since the last call."""
        current = self.value()
        changed, self._seen = current != self._seen, current
        return changed


class TopicAdmin:
    """A long-lived admin client: creates topics and reads their ids (a recreated topic gets a
    new id, which is how a broker that came back empty is recognised)."""

    def __init__(self, settings: KafkaSettings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._client: KafkaAdminClient | None = None

    def _admin(self) -> KafkaAdminClient:
        if self._client is None:
            self._client = KafkaAdminClient(**_common(self.settings, self.client_id))
        return self._client

    def ensure(self, topics: Iterable[str]) -> list[str]:
        """Create the topics that do not exist yet; return the names that were created."""
        try:
            admin = self._admin()
            existing = set(admin.list_topics())
            created: list[str] = []
            for name in sorted(set(topics) - existing):
                try:
                    admin.create_topics(
                        [
                            NewTopic(
                                name,
                                num_partitions=self.settings.topic_partitions,
                                replication_factor=self.settings.replication_factor,
                            )
                        ]
                    )
                    created.append(name)
                except TopicAlreadyExistsError:
                    pass
        except KafkaError:
            self.close()
            raise
        if created:
            log.info("created topics %s", created)
        return created

    def topic_ids(self, topics: Iterable[str]) -> dict[str, str]:
        """The id of each existing topic among ``topics``."""
        return {name: topic_id for name, (topic_id, _) in self.partitions(topics).items()}

    def partitions(self, topics: Iterable[str]) -> dict[str, tuple[str, int]]:
        """The id and partition count of each existing topic among ``topics``."""
        try:
            described = self._admin().describe_topics(sorted(set(topics)))
        except KafkaError:
            self.close()
            raise
        return {
            d["name"]: (str(d["topic_id"]), len(d["partitions"]))
            for d in described
            if d.get("error_code", 0) == 0
        }

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a client whose broker is gone may fail; nothing to keep
                log.debug("admin client close failed", exc_info=True)
            self._client = None


def ensure_topics(settings: KafkaSettings, topics: Iterable[str]) -> list[str]:
    """Create the topics that do not exist yet (one-off admin connection)."""
    admin = TopicAdmin(settings, "admin")
    try:
        return admin.ensure(topics)
    finally:
        admin.close()


def broker_reachable(settings: KafkaSettings, timeout_s: float = 2.0) -> bool:
    """True when the broker answers a metadata request (fails fast when nothing listens)."""
    if not any(_listening(server, timeout_s) for server in settings.bootstrap_servers.split(",")):
        return False
    try:
        consumer = KafkaConsumer(
            **{**_common(settings, "probe"), "request_timeout_ms": int(timeout_s * 1000)},
            allow_auto_create_topics=False,
        )
    except KafkaError:
        return False
    try:
        consumer.topics()
        return True
    except KafkaError:
        return False
    finally:
        consumer.close()


def _listening(server: str, timeout_s: float) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False
