"""Where the web page listens, and whether that needs a token.

Loopback is the default; any other address serves the camera to the network,
so it is refused without a token. Kept free of aiohttp so the config can
check it without starting anything.
"""

from __future__ import annotations

import ipaddress
import socket

DEFAULT_HOST = "127.0.0.1"


def parse_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT', '[::1]:PORT' or 'PORT' (loopback) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, value
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValueError(f"{value!r}: expected HOST:PORT or PORT, e.g. 8080 or 0.0.0.0:8080")
    return host, number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_web_config(listen: str, token: str) -> tuple[str, int]:
    """The address to bind; refuses a network-facing address without a token."""
    host, port = parse_listen(listen)
    if not is_loopback(host) and not token:
        raise ValueError(
            f"{listen!r} makes the camera reachable from the network: "
            "set a token with --web-token (or [web] token, or EMOTION_EDGE_WEB_TOKEN)"
        )
    return host, port


def page_url(listen: str) -> str:
    """The page's address as another machine on the network would open it
    (Home Assistant's "Visit" link), without the token; "" where the page
    is off or on loopback only, which no other machine can open."""
    if not listen:
        return ""
    host, port = parse_listen(listen)
    if is_loopback(host):
        return ""
    if host in ("0.0.0.0", "::"):  # every interface: the name the LAN knows (mDNS)
        host = f"{socket.gethostname()}.local"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"
