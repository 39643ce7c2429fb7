"""Settings of ``maas_lifecycle serve``: defaults, flags over MAAS_LIFECYCLE_* variables, bad
values named by their flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import InvalidInput
from lifecycle.settings import LifecycleSettings


def test_defaults_derive_from_the_data_dir(tmp_path: Path) -> None:
    s = LifecycleSettings.build({"data_dir": str(tmp_path)}, environ={})
    assert s.db == f"sqlite:///{tmp_path / 'lifecycle.db'}"
    assert s.store_uri == f"file://{(tmp_path / 'store').resolve()}"
    assert (s.host, s.port, s.workers, s.four_eyes) == ("127.0.0.1", 8480, 2, False)
    assert s.zk_quorum is None and s.zk_root == "/metron/maas/config"


def test_environment_fills_what_flags_do_not_give(tmp_path: Path) -> None:
    env = {"MAAS_LIFECYCLE_PORT": "9000", "MAAS_LIFECYCLE_DB": "postgresql://u@h:5432/d",
           "MAAS_LIFECYCLE_ZK_QUORUM": "zk:2181", "MAAS_LIFECYCLE_FOUR_EYES": "true",
           "MAAS_LIFECYCLE_ADMIN_TOKEN": "a-chosen-admin-token", "MAAS_LIFECYCLE_DATA_DIR": str(tmp_path)}
    s = LifecycleSettings.build({"port": "9100"}, environ=env)
    assert s.port == 9100  # the flag wins
    assert s.db == "postgresql://u@h:5432/d" and s.zk_quorum == "zk:2181" and s.four_eyes
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "a-chosen-admin-token"
    assert "a-chosen-admin-token" not in repr(s)


@pytest.mark.parametrize("values, flag", [
    ({"port": "99999"}, "--port"),
    ({"db": "mysql://x"}, "db"),
    ({"workers": "-1"}, "--workers"),
    ({"zk_root": "no-slash"}, "-zr"),
])
def test_bad_values_name_their_flag(values: dict[str, str], flag: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        LifecycleSettings.build({"data_dir": str(tmp_path), **values}, environ={})
    assert flag in err.value.message
