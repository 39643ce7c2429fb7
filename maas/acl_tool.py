"""``maas_acl``: the administrator's command for ZooKeeper ACLs (docs/security.md).

- ``maas_acl digest USER`` prints the ACL identity of a digest user, reading the password from
  standard input (never from the command line), for writing the policy file.
- ``maas_acl apply -zq Q --policy FILE [--store-uri URI] [--launcher K]`` creates the cluster's
  config znodes (and writes the given settings into them) and the policy, then sets every MaaS znode's ACL from
  it, authenticated with the administrator's credentials (``MAAS_ZK_AUTH_FILE``). Run it again
  after changing the policy (a new identity, a rotated password).
- ``maas_acl show -zq Q`` prints the policy in force and the ACL of each MaaS root.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NoNodeError

from maas.clitypes import QUORUM, exit_codes_help, show_envvars
from maas.config import DEFAULT_CONFIG_PATH, ext_path
from maas.errors import ConfigError, MaasError
from maas.zk import ZK_ERRORS, Layout, connect, ensure_config, read_config, zk_error
from maas.zkauth import AclPolicy, Kind, ZkAccess, apply_policy, digest_identity, layout_kinds, policy_path, read_policy


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ZooKeeper ACLs of a MaaS cluster."""


@main.command()
@click.argument("user")
def digest(user: str) -> None:
    """Print USER's digest identity; the password is read from standard input."""
    if sys.stdin.isatty():
        password = click.prompt(f"password of {user}", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password or ":" in user:
        raise click.UsageError("a user without ':' and a non-empty password are needed")
    click.echo(digest_identity(user, password))


@main.command(epilog=exit_codes_help([0, 1, 2, 6, 9]))
@click.option("-zq", "--zk_quorum", required=True, type=QUORUM, envvar="MAAS_ZK_QUORUM",
              help="ZooKeeper quorum host:port[,…][/chroot]")
@click.option("-zr", "--zk_root", "config_path", default=DEFAULT_CONFIG_PATH, show_default=True,
              envvar="MAAS_ZK_ROOT", help="Config znode")
@click.option("--policy", "policy_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON file: the identities of each role")
@click.option("--store-uri", help="Model store URI written to the config znode")
@click.option("--launcher", type=click.Choice(["local", "kubernetes"]), help="Launcher written to the config znode")
@click.option("--allowed-store", "allowed_stores", multiple=True, metavar="URI",
              help="A store requests may take payloads from besides --store-uri (repeatable)")
def apply(zk_quorum: str, config_path: str, policy_file: Path, store_uri: str | None, launcher: str | None,
          allowed_stores: tuple[str, ...]) -> None:
    """Write the config znode and the ACL policy, and set the ACL of every MaaS znode."""
    try:
        policy = AclPolicy.from_json(policy_file.read_bytes(), source=str(policy_file))
        access = ZkAccess.from_environment()
        client = connect(zk_quorum, access=access)
        try:
            counts = apply_cluster_policy(client, access, policy, config_path, store_uri=store_uri, launcher=launcher,
                                          allowed_stores=list(allowed_stores) or None)
        finally:
            client.stop()
            client.close()
    except MaasError as exc:
        click.echo(f"maas_acl: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo("ACLs set: " + ", ".join(f"{n} {kind.value}" for kind, n in sorted(counts.items(), key=lambda kv: kv[0].value)))


def apply_cluster_policy(client: KazooClient, access: ZkAccess, policy: AclPolicy, config_path: str, *,
                         store_uri: str | None = None, launcher: str | None = None,
                         allowed_stores: list[str] | None = None) -> dict[Kind, int]:
    """The work of ``maas_acl apply`` on a connected administrator's client."""
    if access.credentials is None or access.credentials.identity not in policy.admin:
        # checked before the config is written, so a refused run changes nothing
        raise ConfigError("these credentials are not among the policy's administrators: applying the policy "
                          "would lock them out (set MAAS_ZK_AUTH_FILE to an administrator's file)")
    # Once the policy is in force only administrators write the config znodes: make sure they
    # exist (with the given settings), as a starting controller would.
    overrides = {"store_uri": store_uri, "launcher": launcher, "allowed_stores": allowed_stores}
    config = ensure_config(client, config_path, overrides=overrides,
                           write=any(v is not None for v in overrides.values()))
    layout = Layout.from_config(config)
    return apply_policy(client, policy, config_path, layout_kinds(layout, [config_path, ext_path(config_path)]),
                        credentials=access.credentials)


@main.command(epilog=exit_codes_help([0, 1, 2, 6, 9]))
@click.option("-zq", "--zk_quorum", required=True, type=QUORUM, envvar="MAAS_ZK_QUORUM",
              help="ZooKeeper quorum host:port[,…][/chroot]")
@click.option("-zr", "--zk_root", "config_path", default=DEFAULT_CONFIG_PATH, show_default=True,
              envvar="MAAS_ZK_ROOT", help="Config znode")
def show(zk_quorum: str, config_path: str) -> None:
    """Print the policy in force and the ACL of each MaaS root."""
    try:
        client = connect(zk_quorum)
        try:
            policy = read_policy(client, config_path)
            layout = Layout.from_config(read_config(client, config_path))
            if policy is None:
                click.echo(f"no ACL policy at {policy_path(config_path)}: the cluster is open")
            else:
                click.echo(policy.to_json().decode())
            for path in sorted(layout_kinds(layout, [config_path, ext_path(config_path), policy_path(config_path)])):
                try:
                    acls, _ = client.get_acls(path)
                except NoNodeError:
                    continue
                except NoAuthError:
                    click.echo(f"{path}: (its ACL is not readable with these credentials)")
                    continue
                except ZK_ERRORS as exc:
                    raise zk_error(f"cannot read the ACL of {path}", exc) from exc
                entries = ", ".join(f"{a.id.scheme}:{a.id.id}={''.join(a.acl_list).lower()}" for a in acls)
                click.echo(f"{path}: {entries}")
        finally:
            client.stop()
            client.close()
    except MaasError as exc:
        click.echo(f"maas_acl: {exc}", err=True)
        sys.exit(exc.exit_code)


for _command in (apply, show):
    show_envvars(_command)


if __name__ == "__main__":
    main()
