"""The deployment files stay correct without a Docker engine: the compose file, the Dockerfiles
and the Postgres init script are checked against the code they deploy."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from fedimpute_shared.fleet import FLEET, fleet_service

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.microservices.yml").read_text())
SERVICES = COMPOSE["services"]
BUILT = {name: spec for name, spec in SERVICES.items() if "build" in spec}
# The fleet table is the truth; the deployment files are checked against it.
PORTS = {s.name: s.port for s in FLEET}
DATABASES = {s.name: s.database for s in FLEET if s.database}


def package_of(service: str) -> str:
    return fleet_service(service).package


def test_every_built_service_exists_in_the_repository():
    for name, spec in BUILT.items():
        assert spec["build"]["context"] == "."
        assert (ROOT / spec["build"]["dockerfile"]).is_file(), name
        assert importlib.util.find_spec(package_of(name)) is not None, name


def test_every_service_folder_with_a_dockerfile_is_deployed():
    for dockerfile in ROOT.glob("*/Dockerfile"):
        assert dockerfile.parent.name in BUILT, (
            f"{dockerfile.parent.name} has a Dockerfile but is not in compose"
        )


@pytest.mark.parametrize("name", sorted(BUILT))
def test_dockerfile_builds_this_member_and_runs_its_package(name):
    text = (ROOT / BUILT[name]["build"]["dockerfile"]).read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+) ", text, re.MULTILINE):
        assert (ROOT / source).exists(), f"{name}: COPY {source} does not exist"
    assert f"--package fedimpute-{name}" in text
    assert f"python -m {package_of(name)} migrate" in text or name == "api-gateway"
    exec_form = f'"python", "-m", "{package_of(name)}", "serve"'
    assert f"python -m {package_of(name)} serve" in text or exec_form in text
    assert "USER app" in text, "services must not run as root"
    assert f"PORT={PORTS[name]}" in text


@pytest.mark.parametrize("name", sorted(BUILT))
def test_service_environment(name):
    env = SERVICES[name]["environment"]
    assert env["ENVIRONMENT"] == "production"
    assert env["PORT"] == str(PORTS[name])
    if name in DATABASES:
        assert env["DATABASE_URL"].endswith(f"/{DATABASES[name]}")
    for key, value in env.items():
        if any(word in key for word in ("SECRET", "PASSWORD", "KEYS")):
            assert "${" in str(value), f"{name}.{key} must come from the environment, not the file"


def test_every_variable_is_required_or_has_a_default():
    """No secret can silently default to empty: each ${VAR} is required (:?) somewhere, or
    (settings such as the published port only) has a default (:-)."""
    text = (ROOT / "docker-compose.microservices.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    defaulted = set(re.findall(r"\$\{([A-Z_]+):-", text))
    assert used == required | defaulted
    assert not {v for v in defaulted if any(w in v for w in ("SECRET", "PASSWORD", "KEY"))}


def test_only_the_gateway_publishes_a_port():
    published = {name for name, spec in SERVICES.items() if spec.get("ports")}
    assert published <= {"api-gateway"}


def test_service_urls_point_at_compose_services():
    for name, spec in BUILT.items():
        for key, value in spec["environment"].items():
            if key.endswith("_URL") and str(value).startswith("http://"):
                host = re.match(r"http://([^:/]+)", str(value)).group(1)
                assert host in SERVICES, (
                    f"{name}.{key} points at {host}, which compose does not run"
                )


def test_init_script_creates_every_database():
    sql = (ROOT / "deploy/postgres/init-databases.sql").read_text()
    assert set(re.findall(r"CREATE DATABASE (\w+);", sql)) == set(DATABASES.values())


def test_every_built_service_is_in_the_fleet_table():
    assert set(BUILT) <= {s.name for s in FLEET}
    for entry in FLEET:
        folder = ROOT / entry.name
        assert folder.is_dir(), f"{entry.name} has no folder"
        if (folder / "pyproject.toml").exists():
            assert f'name = "{entry.project}"' in (folder / "pyproject.toml").read_text()
            assert (folder / "src" / entry.package).is_dir(), entry.package


def test_compose_gives_each_service_the_urls_of_the_fleet_table():
    for name, spec in BUILT.items():
        for key, value in spec["environment"].items():
            target = next((s for s in FLEET if s.url_env == key), None)
            if target is not None:
                assert value == f"http://{target.name}:{target.port}", f"{name}.{key}"


def test_example_env_lists_every_required_variable():
    text = (ROOT / "docker-compose.microservices.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = set(
        re.findall(
            r"^([A-Z_]+)=", (ROOT / "deploy/production.env.example").read_text(), re.MULTILINE
        )
    )
    assert required == example


def test_monitoring_watches_every_service_compose_runs():
    """A service compose runs but monitoring does not watch goes down unnoticed; one it
    watches but compose does not run is reported down for ever."""
    env = SERVICES["monitoring"]["environment"]
    watched = set(env["WATCHED_SERVICES"].split(","))
    assert watched == set(BUILT)
    for name in watched - {"user-service", "service-registry"}:  # those two come from the anchor
        assert env[fleet_service(name).url_env] == f"http://{name}:{fleet_service(name).port}"
