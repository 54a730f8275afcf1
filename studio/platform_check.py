"""Before the window opens on Linux: are the system libraries of Qt's xcb platform there?

Without them Qt aborts with a generic "could not load the Qt platform plugin xcb" message.
This check (plain Python, no Qt import) finds which libraries are missing with `ldd` on the
xcb plugin, plus libxcb-cursor which Qt 6.5+ loads at run time, and names the packages
that bring them on Debian/Ubuntu, Fedora and Arch.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

# library soname -> (Debian/Ubuntu, Fedora, Arch) package
PACKAGES: dict[str, tuple[str, str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil",
                                "xcb-util-renderutil"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon", "libxkbcommon"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb", "libx11"),
    "libEGL.so.1": ("libegl1", "mesa-libEGL", "libglvnd"),
    "libGL.so.1": ("libgl1", "mesa-libGL", "libglvnd"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl", "libglvnd"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig", "fontconfig"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs", "dbus"),
}
DISTROS = (("Debian/Ubuntu", "sudo apt-get install"), ("Fedora", "sudo dnf install"),
           ("Arch", "sudo pacman -S"))


def xcb_platform_wanted(env: dict | None = None) -> bool:
    """True when Qt would use its xcb (X11) platform on this machine."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0].split(";")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def _qt_dir() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    return Path(spec.origin).parent / "Qt" if spec and spec.origin else None


def missing_libraries(binaries: list[Path] | None = None) -> list[str]:
    """Sonames that the xcb plugin needs and the dynamic loader cannot find."""
    if binaries is None:
        qt = _qt_dir()
        if qt is None:
            return []
        binaries = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    missing: set[str] = set()
    for binary in binaries:
        if not binary.is_file():
            continue
        try:
            out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                                 timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return []  # no ldd: let Qt speak for itself
        missing |= {line.split("=>")[0].strip() for line in out.splitlines()
                    if "not found" in line}
    try:
        ctypes.CDLL("libxcb-cursor.so.0")  # loaded by Qt at run time, not linked
    except OSError:
        missing.add("libxcb-cursor.so.0")
    return sorted(missing)


def install_hint(missing: list[str]) -> str:
    """What to tell a person whose Qt xcb platform lacks `missing` libraries."""
    lines = [f"Vision Studio cannot open its window: Qt's X11 (xcb) platform needs "
             f"{', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
             "installed. Install the system packages, then start it again:"]
    for i, (distro, command) in enumerate(DISTROS):
        names = sorted({PACKAGES[m][i] for m in missing if m in PACKAGES})
        if names:
            lines.append(f"  {distro}: {command} {' '.join(names)}")
    unknown = [m for m in missing if m not in PACKAGES]
    if unknown:
        lines.append(f"  (find the package that provides {', '.join(unknown)} on your system)")
    return "\n".join(lines)


def check_gui_platform() -> str | None:
    """The message to print instead of starting, or None when the window can open."""
    if not xcb_platform_wanted():
        return None
    missing = missing_libraries()
    return install_hint(missing) if missing else None
