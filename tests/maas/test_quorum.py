"""Parsing ``-zq`` and the quick look at its members (no ZooKeeper needed: refusals come from
ports nobody listens on)."""

from __future__ import annotations

import socket

import pytest

from maas.errors import ConfigError, CoordinationError
from maas.local_zookeeper import free_port
from maas.quorum import check_reachable, parse_quorum


def test_parses_what_kazoo_connects_to() -> None:
    q = parse_quorum("zk1:2181,zk2:2182,[::1]:2183/maas")
    assert q.members == (("zk1", 2181), ("zk2", 2182), ("::1", 2183)) and q.chroot == "/maas"
    assert q.member_names() == "zk1:2181, zk2:2182, [::1]:2183"
    assert parse_quorum("zk1").members == (("zk1", 2181),)


@pytest.mark.parametrize("text, names", [
    ("127.0.0.1:notaport", "member '127.0.0.1:notaport'"),
    ("zk1:2181,zk2:99999", "member 'zk2:99999'"),
    ("", "the ZooKeeper quorum is empty"),
])
def test_a_bad_quorum_names_its_bad_member(text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names) as info:
        parse_quorum(text)
    assert info.value.exit_code == 2


def test_refused_on_every_member_is_final_but_one_listening_member_is_enough() -> None:
    closed = free_port()
    with pytest.raises(CoordinationError, match=rf"is ZooKeeper running at 127.0.0.1:{closed}\?") as info:
        check_reachable(parse_quorum(f"127.0.0.1:{closed}"))
    assert info.value.exit_code == 6
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_reachable(parse_quorum(f"127.0.0.1:{closed},127.0.0.1:{listening.getsockname()[1]}"))
