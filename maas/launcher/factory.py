"""Choosing the launcher named by the config znode's ``launcher`` key."""

from __future__ import annotations

from maas.config import MaasConfig
from maas.errors import ConfigError
from maas.launcher import Launcher
from maas.settings import ServiceSettings


def make_launcher(config: MaasConfig, settings: ServiceSettings) -> Launcher:
    if config.launcher == "local":
        from maas.launcher.local import LocalLauncher

        return LocalLauncher(settings.work_dir, keep_exited=settings.keep_exited)
    if config.launcher == "kubernetes":
        try:
            from maas.launcher.kubernetes import KubernetesLauncher
        except ImportError as exc:
            raise ConfigError(f"the kubernetes launcher is not available: {exc}") from exc
        return KubernetesLauncher.from_settings(settings)
    raise ConfigError(f"unknown launcher {config.launcher!r}")
