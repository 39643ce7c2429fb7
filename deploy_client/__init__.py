"""The deployment client: the ``maas_deploy`` CLI and the Python API behind it."""

from deploy_client.api import DeployClient

__all__ = ["DeployClient"]
