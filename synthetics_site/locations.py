"""Where an installed Synthetics keeps its data: the user's data directory, never the package's folder.

Standard library only, so the settings and the `synthetics` command (synthetics_site.cli) can both
use it before Django is set up.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "synthetics"


def user_data_dir(
    *,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> Path:
    """Return the per-user data directory: $XDG_DATA_HOME/synthetics or ~/.local/share/synthetics.

    On Linux and other Unixes it follows the XDG Base Directory spec (a relative XDG_DATA_HOME is
    ignored, as the spec says); on macOS it is ~/Library/Application Support/synthetics and on
    Windows %LOCALAPPDATA%\\synthetics, where those systems keep an application's data.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    if platform == "win32":
        base = environ.get("LOCALAPPDATA", "").strip()
        return (Path(base) if base else home / "AppData" / "Local") / APP_NAME
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    xdg_data_home = environ.get("XDG_DATA_HOME", "").strip()
    if xdg_data_home and Path(xdg_data_home).is_absolute():
        return Path(xdg_data_home) / APP_NAME
    return home / ".local" / "share" / APP_NAME


def running_from_checkout(base_dir: Path) -> bool:
    """Whether the code runs from a clone (manage.py beside the packages), not an installed wheel."""
    return (base_dir / "manage.py").is_file()
