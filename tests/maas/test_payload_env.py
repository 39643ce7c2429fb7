"""The payload's environment is an allow-list: the controller's and runner's secrets never reach it."""

from __future__ import annotations

import json
from typing import Callable

import httpx
import pytest
from kazoo.recipe.queue import Queue

from maas.payload_env import CONTRACT, INHERITED, payload_environment
from maas.retry import wait_until
from tests.cluster import PAYLOADS, Cluster

CONTRACT_VALUES = {"MAAS_PORT": "4000", "MAAS_MODEL_NAME": "m", "MAAS_MODEL_VERSION": "1",
                   "MAAS_INSTANCE_ID": "m-1", "MAAS_MEMORY_MB": "512", "MAAS_PYTHON": "/venv/bin/python"}
RUNNER_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/maas", "LANG": "C.UTF-8", "MAAS_HDFS_TOKEN": "tok",
              "AWS_SECRET_ACCESS_KEY": "aws", "MAAS_ZK_PASSWORD": "zk", "MAAS_INSTANCE_SPEC": "{}"}


def test_only_the_allow_list_is_inherited() -> None:
    env = payload_environment(CONTRACT_VALUES, {"GREETING": "hi"}, inherited_from=RUNNER_ENV,
                              path_prefix="/venv/bin")
    assert env == {**CONTRACT_VALUES, "GREETING": "hi", "HOME": "/home/maas", "LANG": "C.UTF-8",
                   "PATH": "/venv/bin:/usr/bin:/bin"}


def test_the_request_env_cannot_replace_a_contract_variable_but_may_set_path() -> None:
    env = payload_environment(CONTRACT_VALUES, {"MAAS_PORT": "1", "PATH": "/opt/bin"}, inherited_from={})
    assert env["MAAS_PORT"] == "4000"
    assert env["PATH"] == "/opt/bin"


def test_an_empty_environment_still_has_a_path() -> None:
    assert payload_environment({}, inherited_from={})["PATH"].endswith("/usr/bin:/bin")


def test_a_variable_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValueError, match="MAAS_HDFS_TOKEN"):
        payload_environment({"MAAS_HDFS_TOKEN": "x"}, inherited_from={})


@pytest.mark.zk
@pytest.mark.e2e
def test_a_payload_sees_none_of_the_controllers_secrets(cluster_factory: Callable[..., Cluster]) -> None:
    secrets = {"MAAS_HDFS_TOKEN": "hdfs-delegation-token", "AWS_SECRET_ACCESS_KEY": "aws-secret-key",
               "SOME_DATABASE_PASSWORD": "pw"}
    cluster = cluster_factory(env=secrets)
    client = cluster.client
    client.upload(PAYLOADS / "envdump", "/models/envdump/1")
    request = {"name": "envdump", "version": "1", "numInstances": 1, "memory": 256, "action": "ADD",
               "path": "/models/envdump/1", "requestId": "env-1", "env": {"GREETING": "hello"}}
    Queue(client.client, client.layout.queue).put(json.dumps(request).encode())
    client.wait("env-1", timeout=60)

    registration = next(iter(wait_until(lambda: cluster.registrations("envdump"), timeout=10,
                                        what="the registration").values()))
    url = registration["payload"]["endpoint"]["url"]
    seen = httpx.get(f"{url}/environment.json", timeout=5).json()

    for name, value in secrets.items():
        assert name not in seen
        assert value not in seen.values()
    assert seen["GREETING"] == "hello"
    assert seen["MAAS_MODEL_NAME"] == "envdump" and seen["MAAS_PORT"] == str(registration["port"])
    # bash itself adds PWD, SHLVL and _; everything else is the documented allow-list
    assert set(seen) - {"PWD", "SHLVL", "_", "OLDPWD"} <= set(INHERITED) | CONTRACT | {"GREETING"}
    cluster.maas_deploy("-mo", "REMOVE", "-n", "envdump", "-v", "1", "--wait")
