"""Starting the window where Qt's xcb platform lacks system libraries: a clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from studio import platform_check as pc


def test_missing_libraries_are_named_with_packages_per_distribution():
    text = pc.install_hint(["libxcb-cursor.so.0", "libxkbcommon-x11.so.0", "libweird.so.9"])
    assert "libxcb-cursor.so.0" in text
    assert "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0" in text
    assert "sudo dnf install libxkbcommon-x11 xcb-util-cursor" in text
    assert "sudo pacman -S libxkbcommon-x11 xcb-util-cursor" in text
    assert "libweird.so.9" in text.splitlines()[-1]


def test_which_platform_is_checked(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert pc.xcb_platform_wanted({"DISPLAY": ":0"})
    assert pc.xcb_platform_wanted({"QT_QPA_PLATFORM": "xcb"})
    assert not pc.xcb_platform_wanted({"QT_QPA_PLATFORM": "offscreen"})
    assert not pc.xcb_platform_wanted({"WAYLAND_DISPLAY": "wayland-0"})
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not pc.xcb_platform_wanted({})


def test_ldd_not_found_lines_are_read(tmp_path, monkeypatch):
    lib = tmp_path / "libqxcb.so"
    lib.write_bytes(b"\x7fELF")

    class Done:
        stdout = ("\tlibxcb-icccm.so.4 => not found\n"
                  "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x0001)\n")

    monkeypatch.setattr(pc.subprocess, "run", lambda *a, **k: Done())
    monkeypatch.setattr(pc.ctypes, "CDLL", lambda name: (_ for _ in ()).throw(OSError(name)))
    assert pc.missing_libraries([lib]) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]


def test_failed_start_prints_the_missing_library_not_the_qt_message(tmp_path):
    """The real entry point, in a child process forced onto xcb with a lacking library."""
    code = ("import studio.platform_check as pc, studio.app as app, sys\n"
            "pc.missing_libraries = lambda: ['libxcb-cursor.so.0']\n"
            "sys.exit(app.main([]))\n")
    env = {"QT_QPA_PLATFORM": "xcb", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], env=env, timeout=120)
    assert proc.returncode == 1
    assert "libxcb-cursor.so.0" in proc.stderr and "libxcb-cursor0" in proc.stderr
    assert "could not load the Qt platform plugin" not in proc.stderr.lower()
