"""Remote settings: where content comes from and how to download it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Policy = Literal["immediate", "on_demand"]
POLICIES: tuple[str, ...] = ("immediate", "on_demand")


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """A remote and its download settings.

    ``policy="immediate"`` downloads every artifact; ``"on_demand"`` records where each artifact
    can be fetched (RemoteArtifact rows) without downloading it. Timeouts are in seconds;
    ``read_timeout`` applies to every read of a body, so a stalled connection cannot hang a sync.
    """

    url: str
    name: str | None = None
    policy: Policy = "immediate"
    download_concurrency: int = 10
    connect_timeout: float = 30.0
    read_timeout: float = 60.0
    total_timeout: float | None = None
    retries: int = 3
    retry_backoff: float = 0.5
    headers: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    password: str | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_validation: bool = True
    proxy_url: str | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown download policy {self.policy!r}: use one of {', '.join(POLICIES)}")
        if self.download_concurrency < 1:
            raise ValueError("download_concurrency must be at least 1")
        if self.retries < 0:
            raise ValueError("retries must be zero or more")

    @property
    def display_name(self) -> str:
        return self.name or self.url
