"""ZooKeeper credentials and the ACL policy, without a server: where credentials come from, that
no message shows a password, and the permission table's ACLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import Permissions

from maas.errors import AccessDenied, ConfigError
from maas.zk import zk_error
from maas.zkauth import AclPolicy, Kind, ZkAccess, digest_identity

PASSWORD = "pa55-w0rd-never-shown"


def write(path: Path, content: object, mode: int = 0o600) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    path.chmod(mode)
    return path


def test_no_credentials_means_anonymous() -> None:
    access = ZkAccess.from_environment({})
    assert not access.authenticated and access.kazoo_options() == {}


def test_digest_credentials_from_a_file(tmp_path: Path) -> None:
    f = write(tmp_path / "c.json", {"user": "deployer", "password": PASSWORD})
    access = ZkAccess.from_environment({"MAAS_ZK_AUTH_FILE": str(f)})
    assert access.kazoo_options() == {"auth_data": [("digest", f"deployer:{PASSWORD}")]}
    assert access.credentials is not None
    assert access.credentials.identity == digest_identity("deployer", PASSWORD)
    assert PASSWORD not in repr(access) and PASSWORD not in access.describe()


def test_digest_credentials_from_env_vars() -> None:
    access = ZkAccess.from_environment({"MAAS_ZK_USER": "reader", "MAAS_ZK_PASSWORD": PASSWORD})
    assert access.kazoo_options()["auth_data"] == [("digest", f"reader:{PASSWORD}")]


def test_sasl_and_tls_options(tmp_path: Path) -> None:
    ca = write(tmp_path / "ca.pem", "x")
    f = write(tmp_path / "c.json", {"scheme": "sasl", "mechanism": "GSSAPI", "principal": "maas/node1@EXAMPLE.COM",
                                    "tls": {"ca": str(ca)}})
    options = ZkAccess.from_file(f).kazoo_options()
    assert options["sasl_options"] == {"mechanism": "GSSAPI", "service": "zookeeper",
                                       "principal": "maas/node1@EXAMPLE.COM"}
    assert options["use_ssl"] is True and options["ca"] == str(ca) and options["verify_certs"] is True
    md5 = ZkAccess.from_file(write(tmp_path / "m.json", {"scheme": "sasl", "mechanism": "DIGEST-MD5",
                                                         "user": "u", "password": PASSWORD}))
    assert md5.kazoo_options()["sasl_options"]["password"] == PASSWORD
    assert md5.credentials is not None and md5.credentials.identity == "sasl:u"
    tls_only = ZkAccess.from_environment({"MAAS_ZK_TLS_CA": str(ca)})
    assert not tls_only.authenticated and tls_only.kazoo_options()["use_ssl"] is True


@pytest.mark.parametrize("content, problem", [
    ({"user": "u"}, "need 'user' and 'password'"),
    ({"user": "u:x", "password": PASSWORD}, "user: must not contain ':'"),
    ({"user": "u", "password": PASSWORD, "pasword": PASSWORD}, "pasword"),
    ({"user": "u", "password": PASSWORD, "tls": {"cert": "/nonexistent"}}, "tls.cert and tls.key go together"),
    (f'{{"user": "u", "password": "{PASSWORD}",,}}', "not valid JSON"),
])
def test_bad_credentials_files_are_named_without_the_password(tmp_path: Path, content: object, problem: str) -> None:
    f = write(tmp_path / "c.json", content)
    with pytest.raises(ConfigError) as info:
        ZkAccess.from_file(f)
    assert problem in str(info.value) and str(f) in str(info.value)
    assert PASSWORD not in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        ZkAccess.from_environment({"MAAS_ZK_AUTH_FILE": str(tmp_path / "missing.json")})


def test_a_file_others_can_read_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ZkAccess.from_file(write(tmp_path / "c.json", {"user": "u", "password": PASSWORD}, mode=0o644))
    assert "readable by every user" in caplog.text and PASSWORD not in caplog.text


def policy() -> AclPolicy:
    return AclPolicy(admin=["digest:admin:A="], controller=["digest:ctl:C="], runner=["digest:run:R="],
                     deployer=["digest:dep:D="], reader=["digest:rd:X=", "world:anyone"])


def perms(kind: Kind) -> dict[str, int]:
    return {f"{a.id.scheme}:{a.id.id}": a.perms for a in policy().acl(kind)}


def test_acls_by_role() -> None:
    R, W, C, D = Permissions.READ, Permissions.WRITE, Permissions.CREATE, Permissions.DELETE
    assert perms(Kind.QUEUE) == {"digest:admin:A=": Permissions.ALL, "digest:ctl:C=": R | D, "digest:dep:D=": C}
    state = perms(Kind.STATE)
    assert state["digest:ctl:C="] == R | W | C | D and state["digest:dep:D="] == R == state["world:anyone"]
    reg = perms(Kind.REGISTRATION)
    assert reg["digest:run:R="] == R | W | C | D and reg["digest:rd:X="] == R and reg["digest:ctl:C="] == R
    config = perms(Kind.CONFIG)
    assert config["digest:admin:A="] == Permissions.ALL
    assert all(p == R for ident, p in config.items() if ident != "digest:admin:A=")


def test_one_identity_in_two_roles_gets_both_rights() -> None:
    both = AclPolicy(admin=["digest:admin:A="], controller=["digest:ctl:C="], runner=["digest:ctl:C="])
    acl = {f"{a.id.scheme}:{a.id.id}": a.perms for a in both.acl(Kind.REGISTRATION)}
    assert acl["digest:ctl:C="] == Permissions.READ | Permissions.WRITE | Permissions.CREATE | Permissions.DELETE


def test_bad_policies_are_refused_naming_the_entry() -> None:
    with pytest.raises(ConfigError, match="admin"):
        AclPolicy.from_json(b'{"admin": []}', source="p.json")
    with pytest.raises(ConfigError, match="deployer.*'bob' is not a ZooKeeper identity"):
        AclPolicy.from_json(b'{"admin": ["digest:a:x"], "deployer": ["bob"]}', source="p.json")
    with pytest.raises(ConfigError, match="digest:user:hash"):
        AclPolicy.from_json(b'{"admin": ["digest:a"]}', source="p.json")


def test_no_auth_becomes_access_denied_with_a_clear_message() -> None:
    error = zk_error("cannot queue request at /maas/queue", NoAuthError())
    assert isinstance(error, AccessDenied) and error.exit_code == 9
    assert str(error).startswith("cannot queue request at /maas/queue: not authorized")
    assert "MAAS_ZK_AUTH_FILE" in str(error)


def test_kazoos_request_log_never_shows_a_password(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from kazoo.protocol.serialization import Auth

    from maas.zkauth import protect_kazoo_logs

    protect_kazoo_logs()
    protect_kazoo_logs()  # once is enough, twice is harmless
    caplog.set_level(logging.DEBUG, logger="kazoo.client")
    logging.getLogger("kazoo.client").debug("Sending request(xid=%s): %s", -4, Auth(0, "digest", f"u:{PASSWORD}"))
    assert "Auth(auth_type=0, scheme='digest', auth='<redacted>')" in caplog.text
    assert PASSWORD not in caplog.text
    assert logging.getLogger("kazoo.client").filters.count(logging.getLogger("kazoo.client").filters[0]) == 1
