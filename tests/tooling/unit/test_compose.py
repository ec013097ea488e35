"""docker-compose.yml: it parses under the Compose specification, runs exactly the registered
services (each on its definition's port, gated on migrations and the bucket), gives every
long-running container a health check and a restart policy, finds every file it mounts and every
variable it reads in .env.example, and its observability profile is the monitoring stack that
deploy/prometheus scrapes. No image registry is reachable here, so nothing is pulled or started:
what this checks is the file and what it refers to."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.env_example import COMPOSE_VARIABLES
from services.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")
DURATION = re.compile(r"^(\d+(h|m|s|ms|us))+$")
ONE_SHOTS = {"migrate", "minio-init"}
OBSERVABILITY = {
    "prometheus",
    "alertmanager",
    "grafana",
    "node-exporter",
    "postgres-exporter",
    "redis-exporter",
}
FIELDS = REGISTRY.settings_type().model_fields
WORKER_PORT = FIELDS["worker_port"].default
WORKER_METRICS_PORT = FIELDS["metrics_port_worker"].default


def _text() -> str:
    return COMPOSE.read_text()


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(_text())
    assert isinstance(loaded, dict)
    return loaded


def _services() -> dict[str, Any]:
    return _compose()["services"]


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _references() -> list[re.Match[str]]:
    """Every `${...}` compose interpolates (in values; comments are not interpolated)."""
    return [m for text in _strings(_compose()) for m in VARIABLE.finditer(text)]


def _env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def _interpolated(values: dict[str, str]) -> str:
    """The compose text with every `${...}` replaced as compose does: the value when set and not
    empty, else the `:-` default; a `:?` variable without a value is an error."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if values.get(name):
            return values[name]
        assert op != ":?", f"compose requires {name}: {arg}"
        return arg if op == ":-" else ""

    return VARIABLE.sub(replace, _text())


def _long_running() -> dict[str, Any]:
    return {name: entry for name, entry in _services().items() if name not in ONE_SHOTS}


def test_the_file_parses_under_the_compose_specification() -> None:
    """The compose_spec parser (the Rust crate's types: unknown keys, bad durations, restart
    policies or depends_on conditions are errors), after interpolation as compose does it."""
    compose_spec = pytest.importorskip("compose_spec", reason="the compose-spec dev dependency")
    values = {m["name"]: "example-0123456789" for m in _references()}
    values["BETTERWORLD_IMAGE"] = "betterworld-mesh:ci"
    parsed = compose_spec.PyCompose.from_json(json.dumps(yaml.safe_load(_interpolated(values))))
    parsed.validate()
    assert set(parsed.service_names()) == set(_services())


def test_every_registered_service_runs_on_its_port_behind_a_grpc_health_check() -> None:
    services = _services()
    for definition in REGISTRY.definitions:
        entry = services.get(definition.name)
        assert entry is not None, f"docker-compose.yml has no {definition.name} service"
        assert entry["command"] == ["serve", definition.name]
        assert entry["healthcheck"]["test"] == [
            "CMD", "betterworld", "health-probe", "--target", f"127.0.0.1:{definition.port}"
        ]  # fmt: skip
        assert entry["environment"]["HOST"] == "0.0.0.0"  # reachable from Envoy and Prometheus
    worker = services["worker"]
    assert worker["command"] == ["worker"]
    assert worker["healthcheck"]["test"][-1] == f"127.0.0.1:{WORKER_PORT}"


def test_compose_serves_nothing_the_registry_does_not_know_and_envoy_waits_for_all() -> None:
    serving = {
        entry["command"][1]
        for entry in _services().values()
        if isinstance(entry.get("command"), list) and entry["command"][:1] == ["serve"]
    }
    assert serving == set(REGISTRY.names)
    envoy = _services()["envoy"]["depends_on"]
    assert set(envoy) == set(REGISTRY.names)
    assert {d["condition"] for d in envoy.values()} == {"service_healthy"}


def test_the_one_shots_gate_every_service_and_the_worker() -> None:
    services = _services()
    for name in (*REGISTRY.names, "worker"):
        depends = services[name]["depends_on"]
        for one_shot in ONE_SHOTS:
            assert depends[one_shot]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    for one_shot in ONE_SHOTS:
        assert services[one_shot]["restart"] == "no"  # a failed one-shot stops the rollout
        assert "healthcheck" not in services[one_shot]
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate", "upgrade"]  # with its pre-migration snapshot
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_snapshots_and_backups_go_to_their_bucket_through_a_staging_volume() -> None:
    services = _services()
    for name in (*REGISTRY.names, "worker", "migrate"):
        assert services[name]["environment"]["BACKUP_STORAGE"] == "s3", name
    assert services["migrate"]["depends_on"]["minio-init"]["condition"] == (
        "service_completed_successfully"
    )
    data_dir = "/app/data"  # the image's DATA_DIR; dumps are staged in DATA_DIR/backups
    assert f"DATA_DIR={data_dir}" in (ROOT / "Dockerfile").read_text()
    for name in ("migrate", "worker"):
        assert f"backups:{data_dir}/backups" in services[name]["volumes"], name
    assert "backups" in _compose()["volumes"]


def test_every_long_running_container_has_a_health_check_and_a_restart_policy() -> None:
    for name, entry in _long_running().items():
        check = entry.get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                assert DURATION.match(check[key]), (name, key, check[key])
        assert entry.get("restart") in {"always", "unless-stopped"}, f"{name} is not restarted"


def test_redis_keeps_queued_jobs() -> None:
    command = _services()["redis"]["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--maxmemory"]  # a limit, so a full Redis refuses writes instead of the host OOM
    assert flags["--requirepass"]


def test_images_are_pinned_by_tag() -> None:
    for name, entry in _services().items():
        image = entry["image"]
        if image.startswith("${BETTERWORLD_IMAGE"):
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert re.search(r"\d", tag), f"{name}: {image} names no version"


def test_the_image_has_the_pg_dump_of_the_servers_major_version() -> None:
    image = _services()["postgres"]["image"]
    major = re.search(r"-pg(\d+)$", image)
    assert major, image
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"postgresql-client-{major[1]}" in dockerfile
    assert f"/usr/lib/postgresql/{major[1]}/bin" in dockerfile


def test_every_variable_compose_reads_is_in_env_example() -> None:
    used = {m["name"] for m in _references()}
    documented = _env_example_names()
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"
    # The compose section lists exactly what compose reads that is no setting.
    settings = {name.upper() for name in FIELDS}
    assert {v.name for v in COMPOSE_VARIABLES} == used - settings
    required = {m["name"] for m in _references() if m["op"] == ":?"}
    for variable in COMPOSE_VARIABLES:
        assert variable.required == (variable.name in required), variable.name


def test_compose_refuses_to_start_without_its_secrets() -> None:
    values = {m["name"]: "x" for m in _references()}
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_PASSWORD"):
        with pytest.raises(AssertionError, match=f"compose requires {secret}"):
            _interpolated({**values, secret: ""})


def test_every_mounted_file_and_named_volume_exists() -> None:
    volumes = set(_compose()["volumes"])
    mounted = 0
    for name, entry in _services().items():
        for mount in entry.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
                assert mount.endswith(":ro"), f"{name} may write to the repository: {mount}"
                mounted += 1
            elif source.startswith("/"):
                # Only the node exporter reads the host, and only to report its disks.
                assert (name, mount) == ("node-exporter", "/:/host:ro"), mount
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
    assert mounted >= 8


FAKE_MC = """#!/bin/sh
# Stands in for MinIO's client: records each call; `attach` fails as mc does on a second run.
echo "$*" >> "$MC_LOG"
case "$1 $2 $3" in
  "admin policy create") cp "$6" "$MC_LOG.policy" ;;
  "admin policy attach") [ -e "$MC_LOG.attached" ] && exit 1; touch "$MC_LOG.attached" ;;
  "admin user info") echo "PolicyName: betterworld-services" ;;
esac
"""


def test_minio_init_creates_both_buckets_and_a_key_that_reaches_only_them(tmp_path: Path) -> None:
    """deploy/minio/init.sh run twice (compose reruns it on every `up`) against a fake `mc`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mc").write_text(FAKE_MC)
    (bin_dir / "mc").chmod(0o755)
    init = _services()["minio-init"]
    assert init["entrypoint"] == ["/bin/sh", "/init.sh"]
    assert "./deploy/minio/init.sh:/init.sh:ro" in init["volumes"]
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "TMPDIR": str(tmp_path),
        "MC_LOG": str(tmp_path / "mc.log"),
        "MINIO_ROOT_USER": "root",
        "MINIO_ROOT_PASSWORD": "root-password",
        "S3_BUCKET": "evidence",
        "BACKUP_BUCKET": "backups",
        "S3_ACCESS_KEY_ID": "services",
        "S3_SECRET_ACCESS_KEY": "services-secret",
    }
    assert set(init["environment"]) == set(env) - {"PATH", "TMPDIR", "MC_LOG"}
    script = str(ROOT / "deploy" / "minio" / "init.sh")
    for _ in range(2):
        subprocess.run(["sh", script], env=env, check=True, capture_output=True, timeout=10)
    calls = (tmp_path / "mc.log").read_text().splitlines()
    assert "mb --ignore-existing local/evidence local/backups" in calls
    assert "admin user add local services services-secret" in calls
    policy = json.loads((tmp_path / "mc.log.policy").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {
        "arn:aws:s3:::evidence", "arn:aws:s3:::evidence/*",
        "arn:aws:s3:::backups", "arn:aws:s3:::backups/*",
    }  # fmt: skip


def test_the_observability_profile_is_the_monitoring_stack() -> None:
    services = _services()
    profiled = {
        name for name, entry in services.items() if "observability" in entry.get("profiles", [])
    }
    assert profiled == OBSERVABILITY
    assert all(set(services[name]["profiles"]) == {"observability"} for name in profiled)
    grafana = services["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    prometheus = services["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in prometheus["volumes"]}
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    for rules in config["rule_files"]:  # relative to the config file's directory
        assert mounts[f"/etc/prometheus/{rules}"] == f"./deploy/prometheus/{rules}"


def test_prometheus_scrapes_what_compose_runs() -> None:
    """Every target of deploy/prometheus/prometheus.yml is a compose service; the mesh's are on
    their metrics ports, and every service and the worker is scraped."""
    services = _services()
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    metrics_ports = {d.name: d.metrics_port for d in REGISTRY.definitions}
    metrics_ports["worker"] = WORKER_METRICS_PORT
    scraped: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                assert host in services, f"Prometheus scrapes {target}: no such compose service"
                scraped[host] = int(port)
    assert {name: scraped.get(name) for name in metrics_ports} == metrics_ports
    assert {"node-exporter", "postgres-exporter", "redis-exporter"} <= set(scraped)
    for alertmanagers in config["alerting"]["alertmanagers"]:
        for static in alertmanagers["static_configs"]:
            for target in static["targets"]:
                assert target.rsplit(":", 1)[0] in services


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[http.server.HTTPServer, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_envoys_health_check_passes_on_200_and_fails_on_503(
    health_server: tuple[http.server.HTTPServer, type[_Health]],
) -> None:
    """The Envoy image has no curl: its check speaks HTTP through bash's /dev/tcp."""
    server, handler = health_server
    test = _services()["envoy"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    script = test[3].replace("/dev/tcp/127.0.0.1/8080", f"/dev/tcp/127.0.0.1/{server.server_port}")
    assert script != test[3]
    assert subprocess.run(["bash", "-c", script], timeout=10).returncode == 0
    handler.status = 503
    assert subprocess.run(["bash", "-c", script], timeout=10).returncode != 0
