"""Remote settings: where content comes from and how to download it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

Policy = Literal["immediate", "on_demand", "streamed"]
POLICIES: tuple[str, ...] = ("immediate", "on_demand", "streamed")
#: the cap on a download whose size the remote does not declare, when neither the remote nor its plugin sets one
DEFAULT_MAX_FILE_SIZE = 1024**3
#: bytes per second a transfer must average once it has run for ``connect_timeout + read_timeout`` seconds
DEFAULT_MIN_RATE = 4096.0


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """A remote and its download settings.

    ``policy="immediate"`` downloads every artifact; ``"on_demand"`` records where each artifact
    can be fetched (RemoteArtifact rows) without downloading it; ``pendingops serve`` fetches and
    stores it on first request. ``"streamed"`` is the same, but what is served is never stored. Timeouts are in seconds;
    ``read_timeout`` applies to every read of a body, so a stalled connection cannot hang a sync;
    a response's headers must arrive within ``connect_timeout + read_timeout``, and a transfer
    still running after that long must average ``min_rate`` bytes per second (0 turns that off),
    so a server dripping bytes cannot hold a sync forever.

    ``max_file_size`` caps every download: a declared size above it fails the unit unread, an
    undeclared size is cut off once it passes it. None means the plugin's default, else
    ``DEFAULT_MAX_FILE_SIZE`` for files of undeclared size.

    A ``user:password@`` in ``url`` is moved into ``username`` and ``password`` and removed from
    the url, which is what is shown and stored. ``username``, ``password`` and ``headers`` are
    sent only to the url's own origin (scheme, host and port), never to other hosts its data names.

    ``proxy_url`` (``http://[user:password@]host:port``) carries every http(s) request of the sync;
    without it, the ``http_proxy``, ``https_proxy`` and ``no_proxy`` environment settings apply, as
    for other command-line tools. A proxy's credentials go only to the proxy.

    A URL of any origin but the remote's own is fetched only from a public address: a loopback,
    private, link-local, shared, unspecified, multicast or reserved one is refused (a remote's
    data must not steer a fetch into the local network), unless ``allow_private_destinations``.
    """

    url: str
    name: str | None = None
    policy: Policy = "immediate"
    download_concurrency: int = 10
    connect_timeout: float = 30.0
    read_timeout: float = 60.0
    total_timeout: float | None = None
    min_rate: float = DEFAULT_MIN_RATE
    max_file_size: int | None = None
    retries: int = 3
    retry_backoff: float = 0.5
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_validation: bool = True
    proxy_url: str | None = None
    allow_private_destinations: bool = False
    #: plugin options (``sync --option KEY=VALUE``), read by the plugin; each plugin says which it knows
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown download policy {self.policy!r}: use one of {', '.join(POLICIES)}")
        if self.download_concurrency < 1:
            raise ValueError("download_concurrency must be at least 1")
        if self.retries < 0:
            raise ValueError("retries must be zero or more")
        if self.min_rate < 0:
            raise ValueError("min_rate must be zero or more")
        if self.max_file_size is not None and self.max_file_size < 1:
            raise ValueError("max_file_size must be at least 1 byte")
        url, username, password = split_credentials(normalise_url(self.url))
        if url != self.url:
            object.__setattr__(self, "url", url)
            if self.username is None:
                object.__setattr__(self, "username", username)
                object.__setattr__(self, "password", password)
        if self.name is not None:
            object.__setattr__(self, "name", strip_credentials(self.name))

    @property
    def display_name(self) -> str:
        return self.name or self.url

    def join(self, path: str) -> str:
        """The URL of ``path`` under the remote's URL taken as a folder (``.../repo`` and ``.../repo/`` alike).

        For plugins whose remote URL is a base: ``remote.join("Packages")``. ``path`` is used as
        given: quote names that may hold ``%``, ``#``, ``?`` or spaces.
        """
        return urljoin(self.url if self.url.endswith("/") else self.url + "/", path)


def normalise_url(url: str) -> str:
    """``url`` checked and put in its usual form: ``http://host:port`` becomes ``http://host:port/``.

    An http(s) URL without a host, or with a port that is not a number, raises ValueError (bad
    input, one line); other schemes are left to the fetcher, which refuses what it cannot fetch.
    """
    try:
        parts = urlsplit(url.strip())
        shown = strip_credentials(url.strip())
    except ValueError as exc:  # an unclosed "[" of an IPv6 host...
        raise ValueError(f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url
    try:
        parts.port  # noqa: B018 (parsing it is the check)
    except ValueError:
        raise ValueError(f"invalid URL {shown!r}: the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"invalid URL {shown!r}: no host (expected {scheme}://HOST[:PORT]/PATH)")
    return urlunsplit(parts._replace(scheme=scheme, path=parts.path or "/"))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its ``user:password@`` part, and that user and password (percent-decoded).

    The user part ends at the authority's *last* ``@``, so a password holding an ``@`` is
    removed whole.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password) if colon else None


def strip_credentials(url: str) -> str:
    """``url`` without its ``user:password@`` part, for showing and storing."""
    return split_credentials(url)[0] if "@" in url else url


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``, the port made explicit for http and https."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port
