"""Incident notifications: a signed webhook whose receiver is down for a while gets every event
once it is back, while the detector's run never waited; refusals are not retried; a full queue
drops the oldest; MQTT subscribers of a real mosquitto receive the events."""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import paho.mqtt.client as mqtt
import pytest

from lifecycle import notify
from lifecycle.detector import DetectionSettings, Detector, Event, Point
from lifecycle.testing.mosquitto import LocalMosquitto
from lifecycle.testing.postgres import free_port
from maas.retry import Backoff, wait_until

SECRET = b"webhook-secret-for-tests"
FAST = Backoff(initial=0.05, multiplier=2.0, max_delay=0.2, jitter=0.0)
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)


def events(pattern: str, element: str = "e1") -> list[Event]:
    d = Detector(DetectionSettings(threshold=1.0, reminder_s=30), model="pump7", element=element, kind="rule",
                 step_s=10, production=True)
    return d.run([Point(T0 + dt.timedelta(seconds=10 * i), 2.0 if c == "x" else 0.0, 1.0, {"a": 1.0}, {"a": 3.0})
                  for i, c in enumerate(pattern)])


class Receiver:
    """A webhook receiver on a fixed port, started and stopped at will; answers ``status``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: "queue.Queue[tuple[dict[str, str], bytes]]" = queue.Queue()
        self.status = 204
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.put(({k: v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def take(self, n: int, timeout: float = 20.0) -> list[tuple[dict[str, str], bytes]]:
        return [self.received.get(timeout=timeout) for _ in range(n)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    yield r
    r.stop()


def test_receiver_down_for_a_while_gets_every_event_after_it_comes_back(receiver: Receiver) -> None:
    hook = notify.WebhookNotifier(f"http://127.0.0.1:{receiver.port}/hook", SECRET, backoff=FAST)
    try:
        produced = events("xxxxxxx..")  # opened, 2 reminders, closed
        assert [e.kind for e in produced] == ["opened", "reminder", "reminder", "closed"]
        for e in produced:  # inference hands them over while nobody listens
            hook.notify(e)
        # notify returned for all four although none could be delivered: inference did not wait
        wait_until(lambda: hook.counters.retried >= 3, timeout=20, what="delivery retries")
        assert hook.counters.delivered == 0 and receiver.received.empty()
        receiver.start()
        got = receiver.take(4)
        wait_until(lambda: hook.counters.delivered == 4, timeout=20, what="four deliveries")
    finally:
        hook.close()
    bodies = [json.loads(body) for _, body in got]
    assert [b["event"] for b in bodies] == ["opened", "reminder", "reminder", "closed"]  # in order
    assert bodies[0]["incident"]["model"] == "pump7" and bodies[3]["incident"]["end"] == "2024-03-01T00:01:10Z"
    for headers, body in got:
        assert notify.verify(SECRET, body, headers[notify.SIGNATURE_HEADER])
        assert headers[notify.EVENT_HEADER] == json.loads(body)["event"]
        assert headers["Content-Type"] == "application/json"
        assert SECRET.decode() not in body.decode() and SECRET.decode() not in json.dumps(headers)
    assert len({h[notify.DELIVERY_HEADER] for h, _ in got}) == 4
    assert not notify.verify(b"another secret", got[0][1], got[0][0][notify.SIGNATURE_HEADER])


def test_a_refusal_is_not_retried_and_a_5xx_is(receiver: Receiver) -> None:
    receiver.start()
    receiver.status = 400
    hook = notify.WebhookNotifier(f"http://127.0.0.1:{receiver.port}/hook", SECRET, backoff=FAST)
    try:
        hook.notify(events("x")[0])
        receiver.take(1)
        wait_until(lambda: hook.counters.refused == 1, timeout=10, what="the refusal")
        receiver.status = 503
        hook.notify(events("x")[0])
        receiver.take(2)  # tried again after the 503
        receiver.status = 200
        receiver.take(1)
        wait_until(lambda: hook.counters.delivered == 1, timeout=10, what="the delivery")
        assert hook.counters.retried >= 2
    finally:
        hook.close()


def test_a_full_queue_drops_the_oldest_and_never_blocks() -> None:
    port = free_port()  # nothing listens: every delivery fails and is retried
    hook = notify.WebhookNotifier(f"http://127.0.0.1:{port}/", None, queue_size=3,
                                  backoff=Backoff(initial=30, max_delay=30, jitter=0))
    try:
        many = events("x" * 40) * 5
        for e in many:  # one being retried, 3 queued, the rest dropped oldest first
            hook.notify(e)
        assert hook.pending() == 3
        assert hook.counters.dropped in (len(many) - 4, len(many) - 3)
    finally:
        hook.close(timeout=1)


def test_settings_build_the_notifiers_and_name_a_bad_value() -> None:
    s = notify.settings_from_env({"MAAS_LIFECYCLE_WEBHOOK_URL": "http://127.0.0.1:9/x",
                                  "MAAS_LIFECYCLE_WEBHOOK_SECRET": "s3cret"})
    assert s.webhook_url == "http://127.0.0.1:9/x" and "s3cret" not in repr(s)
    fan = notify.from_settings(s)
    assert [type(n).__name__ for n in fan.notifiers] == ["WebhookNotifier"]
    fan.close(timeout=1)
    with pytest.raises(notify.InvalidInput) as e:
        notify.settings_from_env({"MAAS_LIFECYCLE_WEBHOOK_URL": "ftp://x"})
    assert e.value.field == "webhook_url" and "MAAS_LIFECYCLE_WEBHOOK_URL" in e.value.message


def test_mqtt_subscriber_receives_the_events(mosquitto: LocalMosquitto) -> None:
    mosquitto.start()
    got: "queue.Queue[tuple[str, dict[str, Any]]]" = queue.Queue()
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("plant/incidents/#", qos=1)
    sub.on_subscribe = lambda c, u, mid, rc, p: subscribed.set()
    sub.on_message = lambda c, u, m: got.put((m.topic, json.loads(m.payload)))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    publisher = notify.MqttNotifier(mosquitto.host, mosquitto.port, topic="plant/incidents/")
    try:
        assert subscribed.wait(10)
        for e in events("xxxx.", element="bearing/temp"):
            publisher.notify(e)
        received = [got.get(timeout=10) for _ in range(3)]
    finally:
        publisher.close()
        sub.loop_stop()
        sub.disconnect()
    assert [t for t, _ in received] == ["plant/incidents/pump7/bearing_temp/opened",
                                        "plant/incidents/pump7/bearing_temp/reminder",
                                        "plant/incidents/pump7/bearing_temp/closed"]
    assert received[0][1]["incident"]["element"] == "bearing/temp" and received[2][1]["event"] == "closed"
