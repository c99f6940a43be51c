"""Where a webhook may be sent: a guard against server-side request forgery (SSRF).

A subscription's URL must be ``http`` or ``https`` with a host name, and every address the host resolves to must
be public: not loopback, private (RFC 1918, unique local), link-local (cloud metadata at 169.254.169.254),
multicast, reserved, unspecified, shared (carrier-grade NAT) or otherwise not globally routable, IPv4 inside
IPv6 included. The check runs when the subscription is created *and* before every delivery, and the delivery
then connects to the very address that was checked (:func:`resolve` pins it), so a name that resolves elsewhere
later (DNS rebinding) cannot reach an internal address. Redirects are never followed (the worker treats a 3xx as
a failed attempt).

An operator whose receivers are on the inside allows them: ``LEADSCORE_WEBHOOKS_ALLOW_PRIVATE=true`` (any
address), or ``LEADSCORE_WEBHOOKS_ALLOWED_NETWORKS='["10.20.0.0/16"]'`` (only those networks).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

#: The longest URL a subscription may have.
MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class TargetRefused(ValueError):
    """A URL that may not be used as a webhook target; the message says why."""


@dataclass(frozen=True)
class TargetPolicy:
    """Which addresses a webhook may reach beyond the public internet.

    Examples
    --------
    >>> TargetPolicy.from_settings(False, ["10.0.0.0/8"]).allows(ipaddress.ip_address("10.1.2.3"))
    True
    >>> TargetPolicy().allows(ipaddress.ip_address("127.0.0.1"))
    False
    """

    allow_private: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, allow_private: bool, networks: Sequence[str] = ()) -> TargetPolicy:
        return cls(allow_private, tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def allows(self, address: IPAddress) -> bool:
        return self.allow_private or refusal(address) is None or any(address in n for n in self.allowed_networks)


@dataclass(frozen=True)
class Target:
    """A checked URL, pinned to the address that was checked: connect to ``pinned_url``, send ``host`` as the
    ``Host`` header and, over TLS, ``host`` as the server name (SNI and certificate check)."""

    url: str
    pinned_url: str
    host: str
    host_header: str
    address: str


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one (None when it is).

    Examples
    --------
    >>> [refusal(ipaddress.ip_address(a)) for a in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "8.8.8.8")]
    ['loopback', 'private', 'link-local', None]
    >>> refusal(ipaddress.ip_address("::ffff:127.0.0.1"))
    'loopback'
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def check_url(url: str) -> tuple[str, str, int]:
    """The scheme, host and port of a well-formed target URL; :class:`TargetRefused` saying what is wrong.

    Examples
    --------
    >>> check_url("https://crm.example.com/hooks")
    ('https', 'crm.example.com', 443)
    >>> try:
    ...     check_url("ftp://crm.example.com/")
    ... except TargetRefused as err:
    ...     print(err)
    the URL's scheme must be http or https, not 'ftp'
    """
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise TargetRefused(f"not a valid URL: {err}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"the URL's scheme must be http or https, not {parts.scheme!r}")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL must not carry credentials (the payloads are signed with the secret instead)")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise TargetRefused("the URL must not contain spaces or control characters")
    if parts.fragment:
        raise TargetRefused("the URL must not have a fragment (#...)")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), as the operating system says."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as err:  # ValueError: e.g. a NUL in the name
        raise TargetRefused(f"the host {host!r} does not resolve: {err}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def resolve(url: str, policy: TargetPolicy, resolver: Resolver = system_resolver) -> Target:
    """Check ``url`` and every address its host resolves to; return it pinned to the first address.

    Raises
    ------
    TargetRefused
        The URL is malformed, its host does not resolve, or one of its addresses is not allowed by ``policy``
        (the message names the address and why).

    Examples
    --------
    >>> try:
    ...     resolve("http://127.0.0.1:8080/hook", TargetPolicy())
    ... except TargetRefused as err:
    ...     print(str(err)[:50])
    the host '127.0.0.1' is at 127.0.0.1, a loopback a
    >>> resolve("http://127.0.0.1:8080/hook", TargetPolicy(allow_private=True)).pinned_url
    'http://127.0.0.1:8080/hook'
    """
    scheme, host, port = check_url(url)
    addresses = resolver(host, port)
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve to any address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if not policy.allows(address):
            raise TargetRefused(
                f"the host {host!r} is at {address}, a {refusal(address)} address: webhooks go to public addresses "
                "only, unless the operator allows it (LEADSCORE_WEBHOOKS_ALLOW_PRIVATE or "
                "LEADSCORE_WEBHOOKS_ALLOWED_NETWORKS)"
            )
    pinned = ipaddress.ip_address(addresses[0].split("%")[0])
    parts = urlsplit(url)
    shown = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    host_header = parts.netloc.rpartition("@")[2]
    return Target(url, urlunsplit(parts._replace(netloc=netloc)), host, host_header, str(pinned))
