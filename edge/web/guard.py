"""What a browser on another site must not be able to make the server do.

A token keeps strangers out, but the default set-up has none (loopback: a
kiosk browser on the Pi, or an SSH tunnel), and any page the same browser
opens can send it requests. So, beside the token:

- The `Host` header must name this server: an IP address, `localhost`, this
  machine's hostname (or `hostname.local`), or a name in `[web] hosts`. A
  page on an attacker's domain that rebinds its DNS to 127.0.0.1 sends its
  own domain as the Host, and is refused (421) before anything is read.
- A request that changes something (pause, analyse) must come from this
  server's own page: a browser names where it comes from (`Origin`,
  `Sec-Fetch-Site`), and another site is refused (403). Tools that are not
  browsers (curl, Home Assistant) send neither and are let through, as the
  token (when set) still applies. Each route takes only the content types
  it documents, so no plain HTML form on another site can fake one.
- Every response carries the headers that keep the page out of frames and
  its address out of referrers, and a Content-Security-Policy the page
  itself satisfies (no inline script or style).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from aiohttp import web

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

# Routes that change state, and the content types each documents.
CONTENT_TYPES = {
    "/api/pause": ("application/json",),
    "/api/analyze": (
        "multipart/form-data",
        "image/jpeg",
        "image/png",
        "image/bmp",
        "image/webp",
        "application/octet-stream",
    ),
}


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port, lower case ("" if none)."""
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else ""
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") <= 1 else host


def allowed_hosts(extra: tuple[str, ...] | list[str] = ()) -> set[str]:
    """The names, besides IP addresses, that this server answers to."""
    hostname = socket.gethostname().lower()
    names = {"localhost", hostname, f"{hostname}.local"}
    return names | {name.lower().rstrip(".") for name in extra}


def host_is_ours(host_header: str, names: set[str]) -> bool:
    name = host_name(host_header)
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True  # a page on an IP address is its own origin: no rebinding
    except ValueError:
        return name in names


def from_another_site(request: web.Request) -> str | None:
    """Why a browser request comes from a page on another site, or None."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site}"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    if origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower():
        return f"Origin: {origin}"
    return None


def make_guard(hosts: tuple[str, ...] | list[str] = ()):
    """The middleware: Host, then (for routes that change state) origin and
    content type; security headers on every answer, errors included."""
    names = allowed_hosts(hosts)
    refused_hosts: set[str] = set()

    @web.middleware
    async def guard(request: web.Request, handler):
        try:
            response = await _check(request, handler)
        except web.HTTPException as exc:  # a redirect, raised as aiohttp asks
            exc.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        return response

    async def _check(request: web.Request, handler):
        host = request.headers.get("Host", "")
        if not host_is_ours(host, names):
            if host not in refused_hosts and len(refused_hosts) < 100:
                refused_hosts.add(host)  # one line per name, not per request
                log.warning(
                    "web: refused a request for Host %r from %s (not this server's name; "
                    "add it to [web] hosts if it is)",
                    host,
                    request.remote,
                )
            return web.json_response(
                {"error": f"this server does not answer to {host!r}: add it to [web] hosts"},
                status=421,
            )
        if request.method == "POST" and request.path in CONTENT_TYPES:
            why = from_another_site(request)
            if why:
                log.warning("web: refused %s from another site (%s)", request.path, why)
                return web.json_response(
                    {"error": f"requests from other sites are refused ({why})"}, status=403
                )
            accepted = CONTENT_TYPES[request.path]
            if request.content_type not in accepted:
                return web.json_response(
                    {"error": f"send {' or '.join(accepted)}, not {request.content_type}"},
                    status=415,
                )
        return await handler(request)

    return guard
