"""Choosing the launcher named by the config znode's ``launcher`` key."""

from __future__ import annotations

from maas.config import MaasConfig
from maas.errors import ConfigError
from maas.launcher import Launcher
from maas.settings import ServiceSettings


def make_launcher(config: MaasConfig, settings: ServiceSettings, *, installation: str | None = None) -> Launcher:
    """``installation``: the id that tells this installation's pods from another's in a shared
    namespace (:func:`maas.zk.installation_id`)."""
    if config.launcher == "local":
        from maas.launcher.local import LocalLauncher

        return LocalLauncher(settings.work_dir, keep_exited=settings.keep_exited)
    if config.launcher == "kubernetes":
        try:
            from maas.launcher.kubernetes import KubernetesLauncher
        except ImportError as exc:
            raise ConfigError(f"the kubernetes launcher is not available: {exc}") from exc
        return KubernetesLauncher.from_settings(settings, installation=installation)
    raise ConfigError(f"unknown launcher {config.launcher!r}")
