"""Static checks of the Dockerfile and its build context (no Docker engine runs here): the
documented base image, a numeric non-root user that matches the pods' securityContext, no payload
baked in, and a .dockerignore that keeps out what the image must not hold but leaves in all that
``pip install .`` needs."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import yaml

from maas.launcher.kubernetes import RUNNER_UID

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in lines if line and not line.startswith("#")]


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _matches(path: str, pattern: str) -> bool:
    if pattern.startswith("**/"):  # any depth
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern[3:]) for i in range(len(parts)))
    return fnmatch.fnmatchcase(path, pattern)


def in_context(rel: str) -> bool:
    """Whether docker would send ``rel`` (a path relative to the repository) to the build: not if
    a pattern matches it or one of its parent directories."""
    patterns = ignore_patterns()
    assert not any(p.startswith("!") for p in patterns), "exceptions in .dockerignore are not handled here"
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return not any(_matches(prefix, pattern) for pattern in patterns for prefix in prefixes)


def test_base_image_and_user() -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE, re.M))
    froms = [a for i, a in instructions() if i == "FROM"]
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms)
    users = [a for i, a in instructions() if i == "USER"]
    assert users and users[-1] == f"{RUNNER_UID}:{RUNNER_UID}"  # numeric: runAsNonRoot can check it
    deployment = yaml.safe_load((ROOT / "k8s" / "base" / "deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == RUNNER_UID


def test_no_payload_is_baked_in() -> None:
    copies = [a for i, a in instructions() if i in ("COPY", "ADD")]
    assert copies == [". ."]  # the build stage's context only; the runtime stage installs wheels
    for path in ("examples/dga/payload/model.onnx", "tests/payloads/echo", "examples/demo.py"):
        assert not in_context(path), path


def test_context_keeps_out_local_state() -> None:
    for path in (".git/config", ".venv/bin/python", "maas/__pycache__/zk.cpython-311.pyc", "maas.egg-info/PKG-INFO",
                 ".pytest_cache/v", "k8s/base/deployment.yaml", "bench/__main__.py", ".run/x"):
        assert not in_context(path), path


def test_context_has_what_pip_install_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert in_context("pyproject.toml") and in_context(pyproject["project"]["readme"])
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("*/__init__.py")
                if any(fnmatch.fnmatchcase(p.parent.name, pattern) for pattern in includes)]
    assert {"maas", "deploy_client", "model_server", "stellar_like"} <= set(packages)
    for package in packages:
        for source in (ROOT / package).rglob("*"):
            rel = source.relative_to(ROOT).as_posix()
            if source.is_file() and "__pycache__" not in rel:
                assert in_context(rel), rel

