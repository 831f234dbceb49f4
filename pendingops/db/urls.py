"""Database URLs as text: the password hidden for messages, without importing a database driver."""

from __future__ import annotations


def mask_password(url: str) -> str:
    """``url`` with the password of its user part shown as ``***``, for messages and help texts.

    Parsed, not pattern-matched: the user part runs up to the authority's *last* ``@`` (before any
    ``?``), so a password holding ``@``, ``:`` or ``/`` is hidden whole.
    """
    scheme, rest, at = _user_part(url)
    if at < 0:
        return url
    user, colon, _ = rest[:at].partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{rest[at + 1 :]}"


def password_of(url: str) -> str | None:
    """The password of ``url``'s user part, as written in it (still percent-encoded), or None."""
    _, rest, at = _user_part(url)
    if at < 0:
        return None
    _, colon, password = rest[:at].partition(":")
    return password if colon else None


def _user_part(url: str) -> tuple[str, str, int]:
    """(scheme, what follows "://", where the user part ends in it: its last "@", or -1 if none).

    A URL without a host ("sqlite:///path") has no user part, whatever its path holds.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or rest.startswith("/"):
        return scheme, rest, -1
    return scheme, rest, rest.partition("?")[0].rfind("@")
