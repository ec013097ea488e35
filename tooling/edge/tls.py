"""TLS on Envoy's public listener: the certificate pair and the transport socket that serves it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALPN_PROTOCOLS = ("h2", "http/1.1")
"""gRPC needs h2; browsers and curl may speak either. The connection manager's AUTO codec
follows what ALPN chose."""


@dataclass(frozen=True, kw_only=True)
class EdgeTls:
    """The certificate Envoy presents on its public port."""

    cert_file: str
    """PEM certificate, with its intermediates after it, at this path as Envoy sees it."""
    key_file: str
    """PEM private key of the certificate, at this path as Envoy sees it."""

    def __post_init__(self) -> None:
        if not self.cert_file or not self.key_file:
            raise ValueError("TLS needs both a certificate file and a key file")


def downstream_transport_socket(tls: EdgeTls) -> dict[str, Any]:
    """The listener's transport socket: TLS 1.2 or later, ALPN h2 and http/1.1.

    Envoy reads the files at start-up; a renewed certificate takes effect when Envoy restarts.
    """
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/"
            "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": list(ALPN_PROTOCOLS),
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificates": [
                    {
                        "certificate_chain": {"filename": tls.cert_file},
                        "private_key": {"filename": tls.key_file},
                    }
                ],
            },
        },
    }
