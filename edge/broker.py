"""An MQTT broker's address, checked: shared by the config, the MQTT sink and
`emotion-edge monitor`, and free of their dependencies (the config checks an
address without loading an MQTT client)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

PASSWORD_ENV = "EMOTION_EDGE_MQTT_PASSWORD"  # never on the command line or in the config


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool


def parse_url(url: str) -> Broker:
    """mqtt://host[:port] or mqtts://host[:port]; a ValueError that says how otherwise."""
    how = "use mqtt://host[:1883] or mqtts://host[:8883] (TLS)"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r} is not a broker address: {how}")
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        raise ValueError(
            f"{url!r}: only a host and a port belong in the address ({how}); the user name "
            f"goes in [mqtt] username, the password in {PASSWORD_ENV}"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has no valid port: {how}") from None
    tls = parts.scheme == "mqtts"
    return Broker(parts.hostname, port or (8883 if tls else 1883), tls)
