"""docker/: no Docker daemon or registry is reachable here, so the image is never built. What is
tested instead: the compose file parses and holds every service and health check the README
promises, and the exact commands the Dockerfile and compose run (entry points and health checks)
work in a plain venv, with compose's environment, against a throwaway Redis."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from jobrunner.embedded import free_port
from jobrunner.settings import Settings
from tests.processes import JOBRUNNER, Proc, base_env, processes, wait_for, wait_http
from tests.processes import wait_registered as wait_worker

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SERVICES = {"redis", "api", "worker-premium", "worker-standard", "prometheus"}
WORKERS = ("worker-premium", "worker-standard")
COMPOSE_PORT = "8000"


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def dockerfile_instruction(name: str) -> list[str]:
    """The exec-form JSON array of the (last) ``name`` instruction of the runtime stage."""
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(?:.*?\bCMD\s+)?(\[.*\])\s*$", text, flags=re.M)
    assert found, f"no exec-form {name} in the Dockerfile"
    argv = json.loads(found[-1])
    assert isinstance(argv, list)
    return [str(a) for a in argv]


def dockerfile_env() -> dict[str, str]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    stages = text.split("\nFROM ")
    pairs = re.findall(r"(JOBRUNNER_\w+)=(\S+)", stages[-1])
    return dict(pairs)


def seconds(duration: str) -> float:
    found = re.fullmatch(r"(\d+)s", duration)
    assert found, duration
    return float(found.group(1))


def test_compose_names_every_service_and_health_check() -> None:
    spec = compose()
    services = spec["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis and "--appendfsync always" in redis
    assert services["prometheus"]["profiles"] == ["metrics"]
    images = {services[name]["image"] for name in ("api", *WORKERS)}
    assert len(images) == 1, "the API and the workers run one image"
    for name in ("api", *WORKERS):
        assert services[name]["env_file"] == "../.env"
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
        assert services[name]["environment"]["JOBRUNNER_REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert (ROOT / ".env.example").is_file()  # what `cp .env.example .env` starts from


def test_workers_per_plan_group_cover_every_plan_once() -> None:
    services = compose()["services"]
    plans: list[str] = []
    for name in WORKERS:
        worker = services[name]
        assert worker["command"] == ["jobrunner", "worker"]
        assert worker["deploy"]["replicas"] >= 1
        assert "--worker" in worker["healthcheck"]["test"]
        # past the drain time of running jobs, or Docker kills them mid-run
        grace = Settings(_env_file=None).shutdown_grace_seconds
        assert seconds(worker["stop_grace_period"]) > grace
        plans += worker["environment"]["JOBRUNNER_WORKER_QUEUES"].split(",")
    assert sorted(plans) == sorted(Settings(_env_file=None).plans)


def test_prometheus_scrapes_the_apis_metrics() -> None:
    services = compose()["services"]
    api = services["api"]
    assert f"{COMPOSE_PORT}:{COMPOSE_PORT}" in api["ports"]
    assert api["command"][-2:] == ["--port", COMPOSE_PORT]
    assert f"http://127.0.0.1:{COMPOSE_PORT}" in api["healthcheck"]["test"]
    mount = "./prometheus.yml:/etc/prometheus/prometheus.yml:ro"
    assert mount in services["prometheus"]["volumes"]
    scrape = yaml.safe_load((DOCKER / "prometheus.yml").read_text())["scrape_configs"]
    assert scrape[0]["metrics_path"] == "/metrics"
    assert scrape[0]["static_configs"][0]["targets"] == [f"api:{COMPOSE_PORT}"]


def test_the_image_is_slim_non_root_with_a_health_check() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    runtime = text.split("\nFROM ")[-1]
    assert runtime.split()[0].endswith("-slim-bookworm")
    user = re.findall(r"^USER\s+(\S+)", runtime, flags=re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert dockerfile_instruction("HEALTHCHECK")[:2] == ["jobrunner", "health"]
    assert dockerfile_instruction("CMD") == ["jobrunner", "worker"]


def test_the_readme_documents_the_services() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Docker\n", 1)[1].split("\n## ", 1)[0]
    for name in SERVICES:
        assert f"`{name}`" in section, name
    promises = ["No Docker daemon", "--profile metrics", "/readyz", "`redis-cli ping`"]
    promises += ["`jobrunner health`", "`jobrunner health --worker`", "`jobrunner health --api"]
    for promise in promises:
        assert promise in section, promise


def dot_env() -> dict[str, str]:
    """What `cp .env.example .env` gives compose's env_file."""
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def service_env(name: str, redis_url: str, key_prefix: str, data: Path) -> dict[str, str]:
    """A service's environment as the container gets it (image ENV < .env < environment:),
    pointed at the test's Redis, prefix and data dir."""
    values = {**dockerfile_env(), **dot_env(), **compose()["services"][name]["environment"]}
    values.update(
        JOBRUNNER_REDIS_URL=redis_url,
        JOBRUNNER_KEY_PREFIX=key_prefix,
        JOBRUNNER_DATA_DIR=str(data),
        JOBRUNNER_DEMO_TASKS="true",
        JOBRUNNER_ADMIN_TOKEN="compose-admin-token",
    )
    return base_env(**{k: str(v) for k, v in values.items()})


def local(argv: list[str], port: int) -> list[str]:
    """A compose or Dockerfile command as run here: the venv's script, a free port, loopback."""
    assert argv[0] == "jobrunner"
    swap = {COMPOSE_PORT: str(port), "0.0.0.0": "127.0.0.1"}
    argv = [JOBRUNNER, *(swap.get(a, a) for a in argv[1:])]
    return [a.replace(f":{COMPOSE_PORT}", f":{port}") for a in argv]


def health_command(name: str, port: int) -> list[str]:
    test = compose()["services"][name]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return local(test[1:], port)


def run_check(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_the_images_commands_run_in_a_plain_venv(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    workdir = tmp_path / "workdir"  # the image's empty working directory
    workdir.mkdir()
    api_env = service_env("api", redis_url, key_prefix, tmp_path / "data")
    worker_env = service_env("worker-standard", redis_url, key_prefix, tmp_path / "data")
    api_argv = local(compose()["services"]["api"]["command"], port)
    worker_argv = local(compose()["services"]["worker-standard"]["command"], port)
    with processes() as started:
        api = Proc(api_argv, api_env, tmp_path / "api.log", cwd=workdir)
        started.append(api)
        worker = Proc(worker_argv, worker_env, tmp_path / "worker.log", cwd=workdir)
        started.append(worker)
        wait_http(api, f"http://127.0.0.1:{port}/healthz")
        image_check = run_check(
            local(dockerfile_instruction("HEALTHCHECK"), port), api_env, workdir
        )
        assert image_check.returncode == 0, image_check.stdout + image_check.stderr
        assert image_check.stdout.startswith("redis: ok")
        api_check = run_check(health_command("api", port), api_env, workdir)
        assert api_check.returncode == 0, api_check.stdout + api_check.stderr
        assert "api: ok" in api_check.stdout
        wait_worker(worker, redis_url, key_prefix)
        worker_check = run_check(health_command("worker-standard", port), worker_env, workdir)
        assert worker_check.returncode == 0, worker_check.stdout + worker_check.stderr
        assert "worker: ok" in worker_check.stdout
        _a_job_goes_through(f"http://127.0.0.1:{port}")
        assert worker.stop(30) == 0, worker.output()
        # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully
        assert api.stop(30) in (0, -signal.SIGTERM), api.output()
        gone = run_check(health_command("worker-standard", port), worker_env, workdir)
        assert gone.returncode == 1 and "worker: FAIL" in gone.stdout


def _a_job_goes_through(url: str) -> None:
    admin = {"Authorization": "Bearer compose-admin-token"}
    with httpx.Client(base_url=url, timeout=10) as http:
        made = http.post(
            "/api/v1/admin/keys", json={"tenant": "acme", "plan": "pro"}, headers=admin
        )
        assert made.status_code == 201, made.text
        auth = {"Authorization": f"Bearer {made.json()['api_key']}"}
        reply = http.post("/api/v1/jobs", json={"task": "demo.echo", "params": {}}, headers=auth)
        assert reply.status_code == 202, reply.text
        link = reply.json()["links"]["self"]

        def finished() -> str | None:
            status = str(http.get(link, headers=auth).json()["status"])
            return status if status in ("succeeded", "failed") else None

        assert wait_for(finished, "the job to finish") == "succeeded"
