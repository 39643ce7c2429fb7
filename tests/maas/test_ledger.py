"""The request ledger against a real ZooKeeper: the pending index that keeps failover flat, its
one-time build for an older state, and the retention of terminal statuses."""

from __future__ import annotations

import json
import time

import pytest
from kazoo.client import KazooClient
from kazoo.recipe.queue import Queue

from maas.config import MaasConfig
from maas.controller.intake import Intake
from maas.controller.ledger import RequestLedger
from maas.request import RequestState, RequestStatus
from maas.zk import Layout

pytestmark = pytest.mark.zk

LAYOUT = Layout.from_config(MaasConfig())


def _accept(zk: KazooClient, *ids: str) -> None:
    intake = Intake(zk, LAYOUT, "file:///store", check_payload=lambda _s, _p: None)
    for rid in ids:
        Queue(zk, LAYOUT.queue).put(json.dumps(
            {"name": "m", "version": "1", "action": "ADD", "path": "/p", "requestId": rid}).encode())
    while intake.apply_next() is not None:
        pass


def _terminal(zk: KazooClient, count: int) -> None:
    for i in range(count):
        zk.create_async(LAYOUT.request(f"old{i}"), RequestStatus(requestId=f"old{i}", state=RequestState.DONE).to_json())
    zk.sync(LAYOUT.requests)


def test_a_term_reads_only_the_pending_requests(zk: KazooClient, monkeypatch: pytest.MonkeyPatch) -> None:
    LAYOUT.ensure(zk)
    ledger = RequestLedger(zk, LAYOUT)
    ledger.load_pending()  # marks the (empty) index complete
    _terminal(zk, 300)
    _accept(zk, "p1", "p2")
    read: list[str] = []
    original = zk.get_async
    monkeypatch.setattr(zk, "get_async", lambda path, *a, **k: (read.append(path), original(path, *a, **k))[1])
    assert set(ledger.load_pending()) == {"p1", "p2"}
    assert sorted(p for p in read if p.startswith(LAYOUT.requests)) == [LAYOUT.request("p1"), LAYOUT.request("p2")]

    assert ledger.record_terminal(RequestStatus(requestId="p1", state=RequestState.DONE))
    assert set(ledger.load_pending()) == {"p2"}
    assert RequestStatus.from_json(zk.get(LAYOUT.request("p1"))[0]).state is RequestState.DONE


def test_the_index_of_an_older_state_is_built_once(zk: KazooClient) -> None:
    LAYOUT.ensure(zk)
    _terminal(zk, 5)
    for rid in ("a", "b"):  # pending, written by a version without the index
        zk.create(LAYOUT.request(rid), RequestStatus(requestId=rid, state=RequestState.ACCEPTED).to_json())
    ledger = RequestLedger(zk, LAYOUT)
    assert set(ledger.load_pending()) == {"a", "b"}
    assert sorted(zk.get_children(LAYOUT.pending_index)) == ["a", "b"]
    zk.create(LAYOUT.request("c"), RequestStatus(requestId="c", state=RequestState.ACCEPTED).to_json())
    assert set(ledger.load_pending()) == {"a", "b"}  # the index is the truth now: no second scan


def test_old_terminal_statuses_are_pruned_and_pending_ones_kept(zk: KazooClient) -> None:
    LAYOUT.ensure(zk)
    _terminal(zk, 30)
    _accept(zk, "pending")
    now = [time.time()]
    ledger = RequestLedger(zk, LAYOUT, retention_seconds=3600, wall_clock=lambda: now[0])
    ledger.load_pending()
    assert ledger.prune() == 0  # all younger than an hour
    now[0] += 3601
    assert ledger.prune(limit=10) == 10  # bounded
    assert ledger.prune() == 20
    assert zk.get_children(LAYOUT.requests) == ["pending"]
    assert set(ledger.load_pending()) == {"pending"}
