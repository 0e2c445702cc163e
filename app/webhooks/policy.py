"""Where callbacks may go, so a job's callback URL cannot turn the service
against the lab's own network (SSRF).

- http or https, a host, no user:password;
- with XRDID_WEBHOOK_ALLOWED_HOSTS set, only those hosts (``*.example.org``
  matches its subdomains); a listed host may have a private address;
- any other host must resolve only to public addresses: loopback, private,
  link-local (cloud metadata), carrier-grade NAT, multicast and reserved
  ranges are refused.

The check runs when a job is submitted (a clear 422) and again on every
delivery, on the very address the connection is made to
(:class:`GuardedBackend`), so a name that changes its address after the
check (DNS rebinding) still cannot reach a refused one. Redirects are not
followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore

__all__ = ["CallbackPolicy", "CallbackRefusedError", "GuardedBackend"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CallbackRefusedError(ValueError):
    """A callback URL or address the policy does not allow (message says why)."""


def _plain(address: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 (::ffff:10.0.0.1) judged as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class CallbackPolicy:
    def __init__(self, allowed_hosts: Iterable[str]) -> None:
        self.allowed_hosts = tuple(h.strip().lower().rstrip(".") for h in allowed_hosts if h)

    def listed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for pattern in self.allowed_hosts:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False

    def check_url(self, url: str) -> str:
        """The URL's host, or CallbackRefusedError saying what is wrong."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise CallbackRefusedError(f"the callback URL {url!r} is not a valid URL") from exc
        if parts.scheme not in ("http", "https"):
            raise CallbackRefusedError(
                f"the callback URL must be http:// or https://, not {parts.scheme or 'none'}:"
            )
        host = parts.hostname
        if not host:
            raise CallbackRefusedError(f"the callback URL {url!r} names no host")
        if parts.username is not None or parts.password is not None:
            raise CallbackRefusedError(
                "the callback URL must not carry a user or password; the signature "
                "(webhook-signature) authenticates the call"
            )
        if port == 0:
            raise CallbackRefusedError("the callback URL's port 0 is not a port")
        if self.allowed_hosts and not self.listed(host):
            raise CallbackRefusedError(
                f"callbacks to {host} are not allowed on this server; the operator lists "
                "allowed hosts in XRDID_WEBHOOK_ALLOWED_HOSTS "
                f"(now: {', '.join(self.allowed_hosts)})"
            )
        return host

    def check_address(self, host: str, address: str) -> None:
        """CallbackRefusedError unless ``host`` may be reached at ``address``."""
        ip = _plain(ipaddress.ip_address(address.split("%", 1)[0]))
        if ip.is_unspecified or ip.is_multicast:
            raise CallbackRefusedError(f"{host} resolves to {ip}, which is not a host address")
        if ip.is_global or self.listed(host):
            return
        raise CallbackRefusedError(
            f"{host} resolves to {ip}, a private, loopback or link-local address; callbacks "
            "into the lab's network need the host in XRDID_WEBHOOK_ALLOWED_HOSTS"
        )

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` it may be called at (all must pass)."""
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise CallbackRefusedError(
                f"the callback host {host} does not resolve ({exc})"
            ) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            self.check_address(host, address)
        if not addresses:
            raise CallbackRefusedError(f"the callback host {host} has no address")
        return addresses

    async def check(self, url: str) -> None:
        """The whole check of a callback URL, resolution included."""
        host = self.check_url(url)
        parts = urlsplit(url.strip())
        await self.resolve(host, parts.port or (443 if parts.scheme == "https" else 80))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy
    allows (resolved here, so the address checked is the address used;
    TLS still verifies the host name)."""

    def __init__(self, policy: CallbackPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.resolve(host, port)
        except CallbackRefusedError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("callbacks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
