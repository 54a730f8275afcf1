"""The garbage collector of the studio's process: what lives as long as the window is
taken out of its full collections.

A full (generation 2) collection walks every container object the process holds, and
holds the GIL while it does: with Qt, pyqtgraph and torch loaded that took 50-250 ms
here, a visible freeze of the window, and a training thread's allocations start one
every few seconds. The objects made while the studio starts, loads its engine or builds
a workspace live as long as the process; `gc.freeze` moves them into a permanent
generation that collections no longer walk, so a full collection walks only what came
after. Objects still free themselves when their last reference goes; only reference
cycles among frozen objects stay (they were alive when frozen and belong to the window).

The studio's entry point installs this; tests do not (they build and drop many windows
in one process, whose cycles must stay collectable).
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Take every object alive now out of future full collections."""
    gc.freeze()


def install(window) -> None:
    """Settle now, when the Train engine has loaded, and the first time each workspace is
    shown (it is built then, with the modules it imports). Only those once-per-process
    moments: objects of the project open at that moment are frozen too, and their cycles
    stay when it closes; settling at every switch would keep every project's."""
    settle()
    window.train.ready.connect(settle)
    seen: set[str] = {window.workspaces.current_key}

    def first_visit(key: str) -> None:
        if key not in seen:
            seen.add(key)
            settle()

    window.workspaces.currentChanged.connect(first_visit)
