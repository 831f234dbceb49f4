"""Opening a database: every way it can go wrong is a one-line DatabaseError."""

from __future__ import annotations

import pytest

from pendingops import DatabaseError, open_database
from pendingops.db.schema import Repository
from tests.conftest import count_rows


def test_a_bare_path_is_an_sqlite_file(tmp_path):
    db = open_database(str(tmp_path / "plain.db"))
    try:
        assert db.dialect == "sqlite" and count_rows(db, Repository) == 0
    finally:
        db.close()
    assert (tmp_path / "plain.db").exists()


def test_a_file_that_is_not_a_database(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x13\x37" * 4096)
    with pytest.raises(DatabaseError, match=r"^cannot open database sqlite:///.*junk\.db: file is not a database$"):
        open_database(f"sqlite:///{junk}")
    assert junk.read_bytes() == b"\x13\x37" * 4096


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////no/such/folder/x.db", "/no/such/folder does not exist"),
        ("mysql://localhost/x", "unsupported database 'mysql'"),
        ("postgresql://[::1/x", "invalid database URL"),
        ("postgresql://localhost:port/x", "invalid database URL"),
        ("postgresql://nobody@127.0.0.1:1/x", "cannot open database postgresql"),
    ],
)
def test_bad_urls_are_one_line_errors(url, message):
    with pytest.raises(DatabaseError, match=message) as caught:
        open_database(url)
    assert "\n" not in str(caught.value)


def test_a_bad_url_is_reported_without_its_password() -> None:
    with pytest.raises(DatabaseError) as caught:
        open_database("postgresql://user:s3cret@127.0.0.1:notaport/db")
    assert "s3cret" not in str(caught.value)
    assert "user:***@" in str(caught.value)
