"""Where a remote's credentials come from, on the host that runs the sync: never from stored settings.

In this order: a ``user:password@`` in the URL given by hand (never stored), then the environment
(``PENDINGOPS_REMOTE_USERNAME`` / ``PENDINGOPS_REMOTE_PASSWORD``), then netrc (``$NETRC``, else
``~/.netrc``: the convention of curl, pip and git). The fetcher sends them only to the remote's own
origin, so queued, scheduled, on_demand and repair fetches get them the same way.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

USERNAME_VARIABLE = "PENDINGOPS_REMOTE_USERNAME"
PASSWORD_VARIABLE = "PENDINGOPS_REMOTE_PASSWORD"


class CredentialsError(ValueError):
    """The netrc file cannot be read: one line naming it."""


def credentials_for(url: str) -> tuple[str, str] | None:
    """The (username, password) for the remote at ``url`` from the environment or netrc; None if none."""
    username = os.environ.get(USERNAME_VARIABLE)
    if username:
        return username, os.environ.get(PASSWORD_VARIABLE, "")
    host = urlsplit(url).hostname
    if not host:
        return None
    path = netrc_path()
    if not path.is_file():
        return None
    try:
        found = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        raise CredentialsError(f"cannot read the netrc file {path}: {getattr(exc, 'msg', None) or exc}") from None
    if found is None:
        return None
    login, _, password = found
    return login, password or ""


def netrc_path() -> Path:
    """``$NETRC`` if set, else ``~/.netrc``."""
    return Path(os.environ.get("NETRC") or Path.home() / ".netrc")
