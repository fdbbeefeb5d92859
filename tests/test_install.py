"""The installed `synthetics` command (docs/install.md): a wheel built from this checkout, installed in a
fresh virtual environment, serves the admin login from a working directory outside the repository.

How the fresh environment gets its dependencies: installing Django and the rest from PyPI into it
would take minutes on CI's machine, so the wheel goes in with --no-deps and the environment then
reads the test run's own site-packages through a .pth file. Python adds a .pth file's lines to
sys.path as plain directories and does not process the .pth files inside them, so the checkout's
editable install (a finder that a .pth file in that site-packages installs) is never picked up:
`synthetics` and `synthetics_site` can only come from the wheel, which the tests check. The .pth
file is written after the wheel is installed, so pip never sees the test run's packages as part of
the fresh environment. The wheel is built as `pipx install .` and `pip install .` build it, with
build isolation (pip fetches setuptools from the registry), from a copy of the sources, so the
build leaves no build/ or egg-info in the checkout.

The server and the scheduler run as subprocesses with a database of their own (SQLite in the
temporary HOME's data directory, never the test database), so these tests are the same on every
database: `once`, and `waits` because they mostly wait on those processes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.once, pytest.mark.waits]

REPO = Path(__file__).resolve().parent.parent
SERVE_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Installed:
    venv: Path
    site_packages: Path
    home: Path
    workdir: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "synthetics"

    @property
    def data_dir(self) -> Path:
        return self.home / ".local" / "share" / "synthetics"

    def env(self) -> dict[str, str]:
        """A user's shell: no DATABASE_URL, no settings module, no PYTHONPATH from the test run."""
        return {
            "PATH": f"{self.venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.command), *args],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _wheel_build(destination: Path, scratch: Path) -> Path:
    source = scratch / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in ("synthetics", "synthetics_site"):
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(destination), "."],
        cwd=source,
        check=True,
        timeout=300,
    )
    (wheel,) = destination.glob("synthetics-*.whl")
    return wheel


@pytest.fixture
def installed(tmp_path) -> Installed:
    root = tmp_path
    wheel = _wheel_build(root / "dist", root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "synthetics_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    home, workdir = root / "home", root / "elsewhere"
    home.mkdir()
    workdir.mkdir()
    return Installed(venv=venv, site_packages=site_packages, home=home, workdir=workdir)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def _log_in(base: str, password: str) -> urllib.request.OpenerDirector:
    """A browser's session: the admin's login form with its CSRF token, as the staff account."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    _, form = _get(f"{base}/admin/login/", opener)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": "admin", "password": password, "next": "/admin/"}
    ).encode()
    request = urllib.request.Request(
        f"{base}/admin/login/", data=body, headers={"Referer": f"{base}/admin/login/"}
    )
    with opener.open(request, timeout=10):
        pass
    return opener


def test_the_installed_wheel_serves_the_admin_login(installed):
    """One test, not three: CI spreads tests over workers, and each would build its own wheel."""
    # given
    port = _free_port()
    log_path = installed.home.parent / "start.log"
    base = f"http://127.0.0.1:{port}"

    # when: the code is imported, and the commands run, from the fresh environment
    located = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import synthetics, synthetics_site.settings as s; print(synthetics.__file__); "
         "print(s.__file__); print(s.FROM_CHECKOUT); print(s.LOCAL_DIR); print(s.STATIC_ROOT)"],
        cwd=installed.workdir, env=installed.env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    version = installed.run("--version")
    check = installed.run("manage", "check")

    # then
    package, settings_module, from_checkout, local_dir, static_root = located.stdout.splitlines()
    assert Path(package).is_relative_to(installed.site_packages), package
    assert Path(settings_module).is_relative_to(installed.site_packages), settings_module
    assert from_checkout == "False"
    # Imported as plain Python (gunicorn synthetics_site.wsgi), the data stays out of site-packages.
    assert Path(local_dir) == installed.data_dir
    assert Path(static_root) == installed.data_dir / "staticfiles"
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"synthetics {expected}"
    assert check.returncode == 0, check.stderr
    assert "System check identified no issues" in check.stdout

    # when: synthetics start, as a user runs it (with a small first install)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(installed.command), "start", "--port", str(port), "--sim-users", "200",
             "--history-hours", "1"],
            cwd=installed.workdir, env=installed.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_SECONDS
        status, page = 0, ""
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            try:
                status, page = _get(f"{base}/admin/login/")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.5)
        stylesheet_status, stylesheet = _get(f"{base}/static/synthetics/studio.css")
        password = re.search(r"with password '([^']+)'", log_path.read_text()).group(1)
        staff = _log_in(base, password)
        index_status, index = _get(f"{base}/admin/", staff)
        studio_status, studio = _get(f"{base}/studio/", staff)
    finally:
        exit_code = _stop(process, log_path)

    # then
    log = log_path.read_text()
    assert status == 200, log
    assert "<title>Log in | Synthetics admin</title>" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert stylesheet_status == 200 and stylesheet.strip(), "the Studio's CSS is not served"
    # The project's own templates came with the wheel: the admin index's and the Studio's.
    assert index_status == 200 and 'id="synthetics-studio-link"' in index
    assert studio_status == 200 and "<h1>Synthetics Studio</h1>" in studio
    assert f"data in {installed.data_dir}" in log
    assert "serve: started scheduler" in log
    assert "serve: stopped." in log
    assert exit_code == 0, log  # neither the web server nor the scheduler failed
    assert (installed.data_dir / "synthetics.sqlite3").is_file()
    assert (installed.data_dir / "secret_key").is_file()
    assert (installed.data_dir / "staticfiles" / "synthetics" / "studio.css").is_file()
    assert not (installed.site_packages / ".local").exists()
    assert not (installed.site_packages / "staticfiles").exists()
    assert not list(installed.workdir.iterdir()), "start wrote into its working directory"


def _stop(process: subprocess.Popen, log_path: Path) -> int:
    """End `synthetics start` as Ctrl-C would (serve stops its web server and scheduler); kill all
    of them if it does not stop in time."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # serve starts its children in process groups of their own: kill those too.
        for child in re.findall(r"serve: started \w+ \(pid (\d+)\)", log_path.read_text()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(child), signal.SIGKILL)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
