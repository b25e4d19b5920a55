"""Where a declared http tool may send a request: the pod's host allow-list and the URL template check.

An operator's URL template is the one place a request's destination comes from, so it is read
strictly: `https://host[:port]/path/{argument}` with placeholders only in the path, no user-info
(`user:pass@`), no IP literals in any notation (a host's last label must start with a letter, which
rules out `127.0.0.1`, `2130706433`, `0x7f.1` and `[::1]`), no trailing dot, no percent-escapes, query
or fragment of its own. Host names compare lower-cased and exactly: `api.example.com` on the list
does not admit `evil.api.example.com` or `api.example.com.`. A port in the URL must be on the list
with the host (`api.example.com:8443`). Plain `http` is accepted only for `localhost` (the tests'
loopback backends); it must still be on the list.

The allow-list names hosts, not addresses: where a listed name resolves is the operator's DNS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ALLOWED_HOSTS = 100
"""Most entries SWITCHBOARD_TOOL_HTTP_ALLOWED_HOSTS may list."""
MAX_URL_CHARS = 2000
"""Longest URL template."""
LOOPBACK_HOSTS = frozenset({"localhost"})
"""Hosts plain `http` is allowed for (when they are on the list too)."""
DEFAULT_PORTS = {"https": 443, "http": 80}

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TOP_LABEL = re.compile(r"^[a-z][a-z0-9-]{0,62}(?<!-)$")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]{0,39})\}")
_PATH_TEXT = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@/-]*$")
"""What a path may hold outside its placeholders: RFC 3986 path characters, without `%`."""


@dataclass(frozen=True, slots=True)
class UrlTemplate:
    """A checked URL template, split where it matters."""

    scheme: str
    host: str
    """Lower case, no trailing dot."""
    port: int | None
    """As written in the URL; None: the scheme's default."""
    path: str
    """Starts with "/"; may hold `{name}` placeholders."""
    placeholders: tuple[str, ...]
    """The placeholder names, in order."""

    @property
    def origin(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.host}{port}"

    @property
    def fixed_prefix(self) -> str:
        """The path up to its first placeholder: every request's path starts with it."""
        return self.path.split("{", 1)[0]


def parse_allowed_hosts(text: str) -> frozenset[str]:
    """`api.example.com, billing.example.com:8443` -> the normalised entries; ValueError naming a
    bad entry."""
    entries = [entry.strip().lower() for entry in text.split(",") if entry.strip()]
    if len(entries) > MAX_ALLOWED_HOSTS:
        raise ValueError(f"at most {MAX_ALLOWED_HOSTS} hosts")
    for entry in entries:
        host, _, port = entry.partition(":")
        problem = host_problem(host) or (_port_problem(port) if port else None)
        if problem is not None:
            raise ValueError(f"{entry[:80]!r}: {problem}")
    return frozenset(entries)


def host_problem(host: str) -> str | None:
    """Why `host` (lower case) cannot be called by name, or None."""
    if not host:
        return "no host"
    if host.endswith("."):
        return "a host must not end with a dot"
    if len(host) > 253:
        return "host name longer than 253 characters"
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return "not a host name (letters, digits, '-' and dots; IDNs as xn--)"
    if not _TOP_LABEL.match(labels[-1]):
        return "IP addresses are not allowed, name the host"
    return None


def parse_url_template(url: str) -> UrlTemplate:
    """The template checked and split; ValueError saying what is wrong (never the allow-list)."""
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"longer than {MAX_URL_CHARS} characters")
    if not url.isascii() or not url.isprintable() or any(char in url for char in " \\"):
        raise ValueError("only printable ASCII without spaces or backslashes")
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in DEFAULT_PORTS:
        raise ValueError("must start with https://")
    if "?" in rest or "#" in rest:
        raise ValueError("no query or fragment in the url: declare query arguments in `query`")
    if "%" in rest:
        raise ValueError("no percent-escapes in the url template")
    authority, slash, path = rest.partition("/")
    path = slash + path if slash else "/"
    if "@" in authority:
        raise ValueError("no user-info (user:password@) in the url: send credentials as secret headers")
    if "{" in authority or "}" in authority:
        raise ValueError("placeholders only in the path")
    if authority.startswith("["):
        raise ValueError("IP addresses are not allowed, name the host")
    host, colon, port_text = authority.lower().partition(":")
    problem = host_problem(host) or (_port_problem(port_text) if colon else None)
    if problem is not None:
        raise ValueError(problem)
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ValueError("must use https (plain http only for localhost)")
    placeholders = tuple(_PLACEHOLDER.findall(path))
    literal = _PLACEHOLDER.sub("x", path)
    if not _PATH_TEXT.match(literal):
        raise ValueError("the path holds characters a URL path cannot (or a malformed {placeholder})")
    if any(segment in (".", "..") for segment in literal.split("/")) or "//" in literal:
        raise ValueError("no '.', '..' or empty segments in the path")
    if len(set(placeholders)) != len(placeholders):
        raise ValueError("each placeholder once")
    port = int(port_text) if colon else None
    return UrlTemplate(scheme, host, port, path, placeholders)


def allowed(template: UrlTemplate, hosts: frozenset[str]) -> bool:
    """Whether the list admits the template's host and port. A bare host on the list admits the
    scheme's default port only."""
    default = DEFAULT_PORTS[template.scheme]
    port = template.port if template.port is not None else default
    return (port == default and template.host in hosts) or f"{template.host}:{port}" in hosts


def _port_problem(text: str) -> str | None:
    if not text.isdigit() or not 0 < int(text) < 65536 or text.startswith("0"):
        return "a port is a number from 1 to 65535"
    return None
