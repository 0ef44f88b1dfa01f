"""The package must import and run its numba kernels where the install folder and the
home cache are read-only (numba would otherwise fail with "no locator available")."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import chita_opt

SCRIPT = """
import numpy as np
import chita_opt as co
from chita_opt.problems import NM
p = co.L0RidgeProblem(np.eye(8), np.arange(8.0), constraint=NM(1, 4))
r = co.solve(p)
assert p.is_feasible(r.w)
print("ok", r.nnz)
"""


def _set_read_only(root: Path, read_only: bool) -> None:
    """chmod for ordinary users; root ignores permission bits, so it gets the immutable
    attribute (chattr +i), which even root cannot write through."""
    dirs = [root, *(p for p in root.rglob("*") if p.is_dir())]
    if os.geteuid() != 0:
        for path in dirs:
            mode = path.stat().st_mode
            bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
            path.chmod(mode & ~bits if read_only else mode | stat.S_IWUSR)
        return
    flag = "+i" if read_only else "-i"
    done = subprocess.run(["chattr", flag, *map(str, dirs)], capture_output=True)
    if done.returncode != 0 and read_only:
        pytest.skip(f"running as root without chattr support: {done.stderr.decode().strip()}")


def test_import_and_kernels_work_from_a_read_only_install(tmp_path):
    package_dir = Path(chita_opt.__file__).parent
    site = tmp_path / "site"
    shutil.copytree(package_dir, site / "chita_opt", ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp_path / "home"
    home.mkdir()
    _set_read_only(site, True)
    _set_read_only(home, True)
    try:
        (home / "probe").touch()
    except OSError:
        pass
    else:
        pytest.skip("could not make a folder read-only on this machine")
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": str(tmp_path / "tmp"),
    }
    env.pop("NUMBA_CACHE_DIR", None)
    (tmp_path / "tmp").mkdir()
    try:
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, cwd=tmp_path
        )
    finally:
        _set_read_only(site, False)
        _set_read_only(home, False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "2"]


def test_the_fallback_cache_folder_must_be_private(tmp_path):
    """The temp-directory fallback is created 0700 and refused when another user could
    write into it or it is a link (someone could plant compiled code there)."""
    from chita_opt._jit import _private_dir

    fresh = tmp_path / "fresh"
    assert _private_dir(str(fresh))
    assert stat.S_IMODE(fresh.stat().st_mode) & 0o077 == 0
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert not _private_dir(str(shared))
    link = tmp_path / "link"
    link.symlink_to(fresh)
    assert not _private_dir(str(link))
