# syntax=docker/dockerfile:1
#
# The MaaS image: the controller (maas_service), the runner every instance pod runs
# (python -m maas.runner) and the built-in model runtime (python -m model_server), with
# maas_deploy and stellar for good measure. No payload is baked in: a runner pulls its payload
# from the model store when its pod starts.
#
#   docker build -t registry.example.com/maas:0.1.0 .
#
# (BuildKit, the default builder since Docker 23, is needed for the RUN --mount below.)
#
# The pods run it as the non-root user 10001 with a read-only root filesystem; /var/lib/maas
# (the runner's instance directory and payload cache) and /tmp are volumes there.

ARG PYTHON_IMAGE=python:3.11-slim

# -- build: wheels for the project and everything it needs ---------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY . .
# `kubernetes` is named explicitly for the Kubernetes launcher (harmless once pyproject.toml
# lists it among the dependencies).
RUN pip wheel --wheel-dir /wheels . "kubernetes>=37"

# -- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/maas
RUN groupadd --system --gid 10001 maas \
 && useradd --system --uid 10001 --gid maas --home-dir /var/lib/maas --no-create-home \
            --shell /usr/sbin/nologin maas \
 && install -d -o maas -g maas -m 0750 /var/lib/maas
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels maas kubernetes \
 && python -c "import maas.runner, maas.launcher.kubernetes, model_server, deploy_client, stellar_like"
WORKDIR /var/lib/maas
# Numeric, so that Kubernetes can check runAsNonRoot without a runAsUser.
USER 10001:10001
CMD ["maas_service", "--help"]
