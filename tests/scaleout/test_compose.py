"""docker-compose.yml describes the topology the scale-out tests run with local processes: one
PostgreSQL with a health check, a one-off init job, workers with --target, and the dashboard.

Docker does not run here, so these tests read the file and check it against the real CLI.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
import yaml

from tuner.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _cli_options(command: str) -> set[str]:
    group = typer.main.get_command(app)
    cmd = group.commands[command]
    return {opt for p in cmd.params for opt in p.opts if opt.startswith("--")}


def _check_command(argv: list[str]) -> str:
    """The tuner sub-command of a service's argv, after checking every flag exists there."""
    sub, *rest = argv
    options = _cli_options(sub)
    for word in rest:
        if word.startswith("--"):
            assert word in options, f"`tuner {sub}` has no option {word}"
    return sub


def test_services_and_their_order(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "init", "worker", "dashboard"}
    pg = services["postgres"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    named = pg["volumes"][0].split(":")[0]
    assert named in compose["volumes"], "PostgreSQL's data must live in a named volume"
    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["init"]["condition"] == \
        "service_completed_successfully"
    assert services["dashboard"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["init"].get("restart") == "no"
    assert "deploy" not in services["worker"] or services["worker"]["deploy"]


def test_commands_are_the_ones_the_tests_run(compose):
    """init: --init-only; worker: --target (any number of workers, robust to one dying);
    dashboard: the dashboard command on 0.0.0.0. Every flag exists in the CLI."""
    services = compose["services"]
    init, worker = services["init"]["command"], services["worker"]["command"]
    assert _check_command(init) == "optimize" and "--init-only" in init
    assert _check_command(worker) == "optimize" and "--target" in worker
    assert "--workers" not in worker and "--trials" not in worker
    for flag in ("--task", "--model", "--strategy", "--study"):
        assert init[init.index(flag) + 1] == worker[worker.index(flag) + 1], \
            f"init and worker must agree on {flag}"
    dash = services["dashboard"]["command"]
    assert _check_command(dash) == "dashboard"
    assert dash[dash.index("--address") + 1] == "0.0.0.0"
    for name in ("init", "worker", "dashboard"):
        assert "TUNER_STORAGE" in services[name]["environment"]
    assert "TUNER_GRACE_PERIOD" in services["worker"]["environment"]


def test_dockerfile_entry_point_is_the_tuner():
    text = (ROOT / "Dockerfile").read_text()
    entry = re.search(r"^ENTRYPOINT\s+(\[.*\])", text, re.M)
    assert entry and shlex.split(entry.group(1).strip("[]").replace(",", " ")) == ["tuner"]
    assert "torch==2.13.0" in text
    extras = re.search(r'pip install [^\n]*"\.\[([\w,-]+)\]"', text)
    assert extras and {"postgres", "dashboard"} <= set(extras.group(1).split(",")), \
        "the image serves the workers (PostgreSQL) and the dashboard"


def test_env_example_defines_every_variable(compose, env_example):
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)\}", text))  # ${VAR:-default} has its own default
    missing = used - set(env_example)
    assert not missing, f".env.example lacks {sorted(missing)}"
    url = env_example["TUNER_STORAGE"]
    assert url.startswith("postgresql")
    user, password, host_db = re.match(r"postgresql\+psycopg2://([^:]+):([^@]+)@(.+)", url).groups()
    assert user == env_example["POSTGRES_USER"] and password == env_example["POSTGRES_PASSWORD"]
    assert host_db == f"postgres:5432/{env_example['POSTGRES_DB']}", \
        "the URL must point at the compose service `postgres`"
