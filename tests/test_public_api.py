"""The package's public names: each one resolves, on first use, to the object its home module defines."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import pendingops


@pytest.mark.parametrize("name", pendingops.__all__)
def test_each_public_name_is_its_home_modules_object(name: str) -> None:
    home = importlib.import_module(pendingops._MODULE_OF[name])
    assert getattr(pendingops, name) is getattr(home, name)
    assert name in dir(pendingops)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'sync_everything'"):
        pendingops.sync_everything  # noqa: B018


def test_star_import_gives_every_public_name_and_importing_the_package_alone_loads_no_dependency() -> None:
    probe = (
        "import sys, pendingops\n"
        "light = not any(m in sys.modules for m in ('sqlalchemy', 'aiohttp', 'reactivex'))\n"
        "from pendingops import *\n"
        "print(light, sorted(n for n in pendingops.__all__ if n not in globals()))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["True", "[]"]
