"""Notifications of incident events (opened, reminder, closed) by webhook and MQTT.

Inference hands every event of the detector to a :class:`Notifier`; ``notify`` never blocks and
never raises, so a slow or dead receiver cannot hold up inference.

* :class:`WebhookNotifier` POSTs the event as JSON (``{"event", "at", "incident"}``) to a URL, with
  the headers ``X-MaaS-Event`` (the event), ``X-MaaS-Delivery`` (a unique id, for receivers that
  deduplicate) and ``X-MaaS-Signature: sha256=<hex>`` — the HMAC-SHA256 of the exact body bytes
  under the shared secret. Events wait on a bounded queue (when it is full the oldest is dropped
  and counted) and one background thread delivers them in order, retrying a failed delivery
  (connection error, timeout, 5xx, 408, 429) with :class:`maas.retry.Backoff` until it succeeds or
  the notifier stops; another 4xx answer is final (logged and counted).
* :class:`MqttNotifier` publishes the same JSON to ``<topic>/<model>/<element>/<event>`` at QoS 1
  through paho-mqtt, whose network thread reconnects and keeps messages queued meanwhile.
* :class:`Fanout` sends to several; :func:`from_settings` builds what :class:`NotifySettings` asks.

The secret is never logged nor put into a payload.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import httpx
import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from lifecycle.detector import Event
from lifecycle.errors import InvalidInput
from maas.retry import Backoff

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-MaaS-Signature"
EVENT_HEADER = "X-MaaS-Event"
DELIVERY_HEADER = "X-MaaS-Delivery"
#: Answers after which the same delivery is tried again.
RETRIED_STATUSES = frozenset({408, 429})


class NotifySettings(BaseModel):
    """Where incident events go (``maas_lifecycle serve`` flags ``--webhook-url`` … or ``MAAS_LIFECYCLE_*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: str | None = Field(None, pattern=r"^https?://", description="POST incident events here")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the signature header")
    webhook_timeout_s: float = Field(5.0, gt=0, le=300, description="Timeout of one delivery")
    queue_size: int = Field(10_000, ge=1, le=1_000_000,
                            description="Events waiting for delivery; beyond it the oldest is dropped")
    mqtt_host: str | None = Field(None, description="MQTT broker to publish incident events to")
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_topic: str = Field("maas/incidents", min_length=1, max_length=200, pattern=r"^[^#+]+$",
                            description="Topic prefix: events go to <prefix>/<model>/<element>/<event>")


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time), for receivers and tests."""
    return hmac.compare_digest(sign(secret, body), header)


def encode(event: Event) -> bytes:
    return json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


class Notifier(Protocol):
    def notify(self, event: Event) -> None:
        """Queue ``event`` for delivery; returns at once and never raises."""

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop."""


@dataclass
class Counters:
    delivered: int = 0
    retried: int = 0
    dropped: int = 0
    refused: int = 0


class _Stop:
    pass


_STOP = _Stop()


class WebhookNotifier:
    """Incident events POSTed to a URL, signed, from a bounded queue by a background thread."""

    def __init__(self, url: str, secret: bytes | None, *, queue_size: int = 10_000, timeout_s: float = 5.0,
                 backoff: Backoff = Backoff(initial=0.2, multiplier=2.0, max_delay=30.0),
                 client: httpx.Client | None = None) -> None:
        self.url = url
        self._secret = secret
        self._queue: queue.Queue[tuple[str, bytes, str] | _Stop] = queue.Queue(maxsize=queue_size)
        self._client = client or httpx.Client(timeout=timeout_s)
        self._backoff = backoff
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.counters = Counters()
        self._thread = threading.Thread(target=self._run, name="webhook-notifier", daemon=True)
        self._thread.start()

    def notify(self, event: Event) -> None:
        try:
            item = (event.kind, encode(event), uuid.uuid4().hex)
        except Exception:  # an event that cannot be encoded is a bug; it must not stop inference
            log.exception("incident event could not be encoded; not sent")
            return
        with self._lock:  # drop-oldest and put as one step, so concurrent callers never block
            while True:
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.counters.dropped += 1
                    except queue.Empty:
                        pass

    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _Stop):
                return
            self._deliver(*item)

    def _deliver(self, kind: str, body: bytes, delivery: str) -> None:
        headers = {"Content-Type": "application/json", EVENT_HEADER: kind, DELIVERY_HEADER: delivery}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        for attempt in itertools.count():
            if self._stopping.is_set() and attempt > 0:
                self.counters.dropped += 1
                return
            try:
                answer = self._client.post(self.url, content=body, headers=headers)
                if answer.status_code < 300:
                    self.counters.delivered += 1
                    return
                if answer.status_code < 500 and answer.status_code not in RETRIED_STATUSES:
                    log.warning("webhook %s refused a %s event with HTTP %d; not retried", self.url, kind,
                                answer.status_code)
                    self.counters.refused += 1
                    return
                reason = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            except Exception as exc:  # the delivery loop never dies
                log.exception("webhook delivery failed unexpectedly")
                reason = type(exc).__name__
            self.counters.retried += 1
            pause = self._backoff.delay(attempt)
            log.info("webhook %s: %s event not delivered (%s); retry in %.1fs", self.url, kind, reason, pause)
            if self._stopping.wait(pause):
                self.counters.dropped += 1
                return

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued within ``timeout`` (no retries once stopping), then stop."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._stopping.set()
        self._thread.join(1.0)
        self._client.close()


class MqttNotifier:
    """Incident events published to an MQTT broker at QoS 1 (paho-mqtt's own thread and queue)."""

    def __init__(self, host: str, port: int = 1883, *, topic: str = "maas/incidents", queue_size: int = 10_000,
                 client_id: str | None = None) -> None:
        self.topic = topic.rstrip("/")
        self.counters = Counters()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                   client_id=client_id or f"maas-lifecycle-{uuid.uuid4().hex[:12]}")
        self._client.max_queued_messages_set(queue_size)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    def topic_of(self, event: Event) -> str:
        inc = event.incident
        # MQTT forbids the wildcards in a topic name; '/' in a name would add levels
        clean = [s.replace("/", "_").replace("+", "_").replace("#", "_") for s in (inc.model, inc.element)]
        return f"{self.topic}/{clean[0]}/{clean[1]}/{event.kind}"

    def notify(self, event: Event) -> None:
        try:
            info = self._client.publish(self.topic_of(event), encode(event), qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self.counters.dropped += 1
                log.warning("MQTT queue full; %s event dropped", event.kind)
            else:
                self.counters.delivered += 1
        except Exception:
            self.counters.dropped += 1
            log.exception("MQTT publish of a %s event failed", event.kind)

    def close(self, timeout: float = 5.0) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass
class Fanout:
    """Every event to each notifier."""

    notifiers: Sequence[Notifier] = field(default_factory=list)

    def notify(self, event: Event) -> None:
        for n in self.notifiers:
            n.notify(event)

    def close(self, timeout: float = 5.0) -> None:
        for n in self.notifiers:
            try:
                n.close(timeout)
            except Exception:
                log.exception("a notifier did not close cleanly")


class Recorder:
    """A notifier keeping the events in memory (``maas_model stream`` prints them; tests read them)."""

    def __init__(self, on_event: Callable[[Event], Any] | None = None) -> None:
        self.events: list[Event] = []
        self._on_event = on_event

    def notify(self, event: Event) -> None:
        self.events.append(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("event callback failed")

    def close(self, timeout: float = 5.0) -> None:
        pass


def from_settings(settings: NotifySettings) -> Fanout:
    out: list[Notifier] = []
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else None
        out.append(WebhookNotifier(settings.webhook_url, secret, queue_size=settings.queue_size,
                                   timeout_s=settings.webhook_timeout_s))
    if settings.mqtt_host:
        out.append(MqttNotifier(settings.mqtt_host, settings.mqtt_port, topic=settings.mqtt_topic,
                                queue_size=settings.queue_size))
    return Fanout(out)


def settings_from_env(environ: dict[str, str]) -> NotifySettings:
    """:class:`NotifySettings` from ``MAAS_LIFECYCLE_WEBHOOK_URL``, ``…_WEBHOOK_SECRET``, ``…_MQTT_HOST`` …"""
    values: dict[str, Any] = {}
    for name in NotifySettings.model_fields:
        v = environ.get("MAAS_LIFECYCLE_" + name.upper())
        if v:
            values[name] = v
    try:
        return NotifySettings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "notify"
        raise InvalidInput(f"MAAS_LIFECYCLE_{field.upper()}: {err['msg']}", field=field) from exc
