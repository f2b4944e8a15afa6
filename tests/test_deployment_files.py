"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_voxroute_on_a_persistent_redis() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["redis"]["image"].startswith("redis:7")
    assert "--appendonly" in services["redis"]["command"]
    app = services["voxroute"]
    assert app["build"] == "."
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert app["environment"]["VOXROUTE_REDIS_URL"].startswith("redis://redis:")
    for volume in (*services["redis"]["volumes"], *app["volumes"]):
        assert volume.split(":")[0] in compose["volumes"]


def test_compose_refuses_to_start_without_keys() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["voxroute"]["environment"]
    assert env["VOXROUTE_REQUIRE_AUTH"] == "true"
    for secret in ("VOXROUTE_ADMIN_TOKEN", "VOXROUTE_KEY_SECRET"):  # required, never a value
        assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", env[secret]), env[secret]


def test_compose_sets_only_settings_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = {f"VOXROUTE_{name.upper()}" for name in Settings.model_fields}
    assert set(compose["services"]["voxroute"]["environment"]) <= known


def test_the_dockerfile_installs_from_the_lock_and_serves() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile
    for copied in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
        assert (ROOT / copied).exists(), copied
    cmd = json.loads(re.search(r"^CMD (.+)$", dockerfile, flags=re.MULTILINE)[1])  # type: ignore[index]
    assert cmd[-5:] == ["serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104 - in a container
