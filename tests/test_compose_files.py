"""The compose files against the Compose Specification's schema.

No Docker engine runs where the tests run (CI), so `docker compose config`
cannot check them; the schema can, once variables are interpolated as
Compose does it (in the parsed strings, with their defaults). It catches a
misspelt key, a wrong type or an unknown condition, not what only starting
the services shows (`benchmarks/compose_scale.py`, docs/scale-out.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from xrdid.data_paths import PROJECT_ROOT

SCHEMA = json.loads((Path(__file__).parent / "files" / "compose" / "compose_spec.json").read_text())
# What an operator must export (`${VAR:?…}`) before `docker compose up`.
REQUIRED = {"POSTGRES_PASSWORD": "a-long-random-password", "XRDID_WRITE_API_KEYS": "a-long-key"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolated(value: Any, env: dict[str, str]) -> Any:
    """``value`` with ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` in its
    strings replaced, and ``$$`` read as ``$``."""
    if isinstance(value, dict):
        return {key: interpolated(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolated(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if name in env:
            return env[name]
        if operator == "?":
            raise ValueError(f"{name} must be set: {argument}")
        return argument or ""

    return _VARIABLE.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


def loaded(name: str, env: dict[str, str]) -> dict[str, Any]:
    document = interpolated(yaml.safe_load((PROJECT_ROOT / name).read_text()), env)
    for service in document["services"].values():
        deploy = service.get("deploy", {})
        if isinstance(deploy.get("replicas"), str):  # Compose casts it after interpolation
            deploy["replicas"] = int(deploy["replicas"])
    return document


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.scale.yml"])
def test_compose_files_follow_the_compose_specification(name: str) -> None:
    document = loaded(name, REQUIRED)
    errors = [
        f"{'/'.join(map(str, e.path))}: {e.message}"
        for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(document)
    ]
    assert not errors, errors
    # Files the services mount and build from are in the repository.
    for service in document["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).is_file(), source
        if "build" in service:
            assert (PROJECT_ROOT / service["build"]["context"] / "Dockerfile").is_file()


def test_the_scale_out_file_needs_the_database_password() -> None:
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
        loaded("docker-compose.scale.yml", {})


def test_the_schema_refuses_what_compose_would() -> None:
    """The check can fail: a misspelt key and an unknown condition are refused."""
    document = loaded("docker-compose.yml", REQUIRED)
    document["services"]["xrdid"]["healthcheck"]["intervall"] = "30s"
    document["services"]["proxy"]["depends_on"] = {"xrdid": {"condition": "service_up"}}
    assert len(list(jsonschema.Draft7Validator(SCHEMA).iter_errors(document))) == 2


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.scale.yml"])
def test_every_image_and_index_can_be_a_sites_own(name: str) -> None:
    """Docker Hub's images and the PyTorch index by default; a host that
    reaches neither names its own (docs/operations.md, "Without Docker Hub")."""
    default = loaded(name, REQUIRED)["services"]
    own = {
        "XRDID_PYTHON_IMAGE": "local/python:3.11-slim",
        "XRDID_TORCH_INDEX_URL": "https://pypi.mirror.lab/simple",
        "XRDID_PROXY_IMAGE": "local/nginx:1.30",
        "XRDID_POSTGRES_IMAGE": "local/postgres:15",
    }
    mirrored = loaded(name, REQUIRED | own)["services"]
    assert default["proxy"]["image"] == "nginx:1.28-alpine"
    assert mirrored["proxy"]["image"] == own["XRDID_PROXY_IMAGE"]
    if "postgres" in default:
        assert default["postgres"]["image"] == "postgres:16"
        assert mirrored["postgres"]["image"] == own["XRDID_POSTGRES_IMAGE"]
    builds = [
        (default[k]["build"]["args"], mirrored[k]["build"]["args"])
        for k in default
        if "build" in default[k]
    ]
    assert builds
    for args, args_mirrored in builds:
        assert args["PYTHON_IMAGE"] == "python:3.11-slim"
        assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
        assert args_mirrored["PYTHON_IMAGE"] == own["XRDID_PYTHON_IMAGE"]
        assert args_mirrored["TORCH_INDEX_URL"] == own["XRDID_TORCH_INDEX_URL"]


def test_the_dockerfile_takes_every_build_argument_the_compose_files_pass() -> None:
    """Docker ignores a build argument the Dockerfile does not declare."""
    declared = set(re.findall(r"^ARG (\w+)", (PROJECT_ROOT / "Dockerfile").read_text(), re.M))
    for name in ("docker-compose.yml", "docker-compose.scale.yml"):
        for service in loaded(name, REQUIRED)["services"].values():
            assert set(service.get("build", {}).get("args", {})) <= declared, name
