"""Where an artifact not stored yet can be fetched from: its RemoteArtifacts and their remotes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from pendingops.db.schema import OTHER_DIGESTS, Remote, RemoteArtifact
from pendingops.pending import PendingArtifact
from pendingops.remote import RemoteConfig

_ra = RemoteArtifact.__table__
_remote = Remote.__table__


@dataclass(frozen=True, slots=True)
class Source:
    """One place an artifact can be fetched from, with what it must be."""

    url: str
    remote_id: int
    remote_name: str
    remote_url: str
    policy: str
    size: int | None
    digests: dict[str, str]
    #: the remote's size cap as its last sync applied it (None: the default)
    max_file_size: int | None = None

    def settings(self) -> RemoteConfig:
        """The remote's recorded settings (credentials are never stored: only url, name, policy and size cap)."""
        policy = self.policy if self.policy in ("immediate", "on_demand", "streamed") else "on_demand"
        return RemoteConfig(
            url=self.remote_url,
            name=self.remote_name,
            policy=policy,  # type: ignore[arg-type]
            max_file_size=self.max_file_size if self.max_file_size and self.max_file_size > 0 else None,
        )

    def pending(self, relative_path: str) -> PendingArtifact:
        """The artifact to fetch from here, with what it must be."""
        others = {name: value for name, value in self.digests.items() if name != "sha256"}
        sha256 = self.digests.get("sha256")
        return PendingArtifact(url=self.url, relative_path=relative_path, size=self.size, sha256=sha256, digests=others)


def sources(conn: Connection, content_artifact_id: int) -> list[Source]:
    """Where the artifact of ``content_artifact_id`` can be fetched from, oldest record first."""
    digest_columns = [_ra.c.sha256, *(_ra.c[name] for name in OTHER_DIGESTS)]
    query = (
        select(
            _ra.c.url,
            _ra.c.size,
            _remote.c.id,
            _remote.c.name,
            _remote.c.url,
            _remote.c.policy,
            _remote.c.max_file_size,
            *digest_columns,
        )
        .join(_remote, _remote.c.id == _ra.c.remote_id)
        .where(_ra.c.content_artifact_id == content_artifact_id)
        .order_by(_ra.c.id)
    )
    found = []
    for row in conn.execute(query):
        url, size, remote_id, name, remote_url, policy, max_file_size, *values = row
        digests = {col.name: value for col, value in zip(digest_columns, values, strict=True) if value}
        found.append(Source(url, remote_id, name, remote_url, policy, size, digests, max_file_size))
    return found
