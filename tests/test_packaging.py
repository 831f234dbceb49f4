"""Released artifacts: the sdist and the wheel install into a clean venv and run the demo outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PENDINGOPS_DB")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def _assert_demo_works(bin_dir: Path, workdir: Path) -> None:
    data = workdir / "demo-data"
    done = _run(bin_dir / "pendingops", "demo", "--files", "8", "--data", data, cwd=workdir)
    assert "new version 2" in done.stdout and "What changed from version 1 to 2" in done.stdout
    status = _run(bin_dir / "pendingops", "--db", f"sqlite:///{data / 'demo.db'}", "db", "status", cwd=workdir)
    assert "schema is up to date" in status.stdout
    imported = _run(bin_dir / "python", "-c", "import pendingops; print(pendingops.__file__)", cwd=workdir)
    assert str(ROOT) not in imported.stdout, "the installed package, not the checkout, must be the one running"


@pytest.mark.packaging
@pytest.mark.timeout(900)
def test_sdist_and_wheel_install_into_a_clean_venv_and_run_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # no --sdist/--wheel: the wheel is built from the unpacked sdist, which proves the sdist complete
    # (and leaves no build/ folder in the checkout)
    _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    [sdist] = dist.glob("pendingops-*.tar.gz")
    [wheel] = dist.glob("pendingops-*.whl")

    env_dir = tmp_path / "clean"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    _run(bin_dir / "pip", "install", "--quiet", wheel, cwd=workdir)
    _assert_demo_works(bin_dir, workdir)
    # the sdist builds and installs too (dependencies are already there)
    _run(bin_dir / "pip", "install", "--quiet", "--force-reinstall", "--no-deps", sdist, cwd=workdir)
    _assert_demo_works(bin_dir, workdir)


def test_make_demo_installs_the_runtime_only_and_make_test_the_test_extras() -> None:
    root = Path(__file__).resolve().parent.parent

    def dry_run(target: str) -> list[str]:
        done = subprocess.run(
            ["make", "-n", "-B", target, "VENV=/nonexistent/v", "DEMO_VENV=/nonexistent/d"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return [line for line in done.stdout.splitlines() if " install " in line and "--upgrade pip" not in line]

    assert dry_run("demo") == ["/nonexistent/d/bin/pip install --quiet -e ."]
    assert dry_run("test") == ["/nonexistent/v/bin/pip install --quiet -e '.[test]'"]
