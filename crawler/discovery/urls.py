"""URL hygiene: the canonical form a crawl fetches and deduplicates on, and which hosts an
outlet may reach."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING = re.compile(
    r"^(?:utm_[a-z_]+|fbclid|gclid|gclsrc|dclid|yclid|msclkid|mc_cid|mc_eid|_ga|_gl|igshid"
    r"|twclid|ttclid|wbraid|gbraid|_hsenc|_hsmi|mkt_tok|oly_anon_id|oly_enc_id|vero_id"
    r"|rb_clickid|s_cid|spm|share|ref_src|ref_url)$",
    re.IGNORECASE,
)


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, no fragment, no tracking parameters; the
    rest (path, other parameters and their order) as published."""
    parts = urlsplit(url.strip())
    netloc = _host_port(parts.scheme, parts.netloc)
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    query = parts.query
    if query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                if not _TRACKING.match(k)]
        if len(kept) != query.count("&") + 1:
            query = urlencode(kept, quote_via=quote, safe="/:@!$'()*,;")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def host_key(url: str) -> str:
    """``host[:port]`` as canonical_url writes it (without parsing the rest of the URL)."""
    parts = urlsplit(url.strip())
    return _host_port(parts.scheme, parts.netloc)


@lru_cache(maxsize=4096)
def _host_port(scheme: str, netloc: str) -> str:
    """Lower-case (IDNA) host, and the port unless it is the scheme's default (a crawl meets
    few hosts and many URLs: remembered)."""
    parts = SplitResult(scheme, netloc, "", "", "")
    host = (parts.hostname or "").rstrip(".")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host.lower()
    except UnicodeError:
        host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    return f"{host}:{port}" if port and port != _DEFAULT_PORTS.get(scheme.lower()) else host


@lru_cache(maxsize=4096)
def is_internal_host(host: str) -> bool:
    """Loopback, private, link-local or otherwise non-public addresses (and localhost)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return is_internal_address(name)
    except ValueError:
        return False


@lru_cache(maxsize=4096)
def is_internal_address(address: str) -> bool:
    """An IP address off the public internet: loopback, private, link-local, unique-local,
    unspecified, multicast, reserved (an IPv4-mapped IPv6 address as its IPv4 one)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved


class HostScope:
    """The hosts an outlet may reach: its own URLs' hosts (subdomains on the same port when
    allowed), and internal addresses only when the outlet itself lives on one."""

    def __init__(self, urls: tuple[str, ...], allow_subdomains: bool = False) -> None:
        self.hosts = frozenset(host_key(u) for u in urls)
        self.allow_subdomains = allow_subdomains
        self.internal_ok = any(is_internal_host(urlsplit(u).hostname or "") for u in urls)
        # what the outlet's own hosts resolved to when the crawl opened (the crawl sets it):
        # the only internal addresses its connections may reach
        self.addresses: frozenset[str] = frozenset()

    @property
    def hostnames(self) -> frozenset[str]:
        """The outlet's own host names (or IP literals), without ports."""
        return frozenset(urlsplit(f"//{host}").hostname or host for host in self.hosts)

    @property
    def embed_addresses(self) -> frozenset[str] | None:
        """The internal addresses a requisite's connection may reach: any (None) for an outlet
        that lives on an internal address (an intranet's embeds are on the intranet too),
        else only those the outlet's own hosts resolved to."""
        return None if self.internal_ok else self.addresses

    def embed_verdict(self, url: str) -> str | None:
        """None when a requisite at `url` may be fetched: from any host (news pages load their
        images and fonts from CDNs), but internal addresses only when the outlet itself
        lives on one. Else the reason: "scheme", "internal"."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return "scheme"
        if is_internal_host((parts.hostname or "").lower()) and not self.internal_ok:
            return "internal"
        return None

    def verdict(self, url: str) -> str | None:
        """None when `url` may be fetched, else the reason: "scheme", "internal", "offsite"."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return "scheme"
        hostname = (parts.hostname or "").lower()
        if is_internal_host(hostname) and not self.internal_ok:
            return "internal"
        host = _host_port(parts.scheme, parts.netloc)
        if host in self.hosts:
            return None
        # host_key keeps a port that is not the default: a subdomain must be on the same one
        if self.allow_subdomains and any(host.endswith("." + own) for own in self.hosts):
            return None
        return "offsite"
