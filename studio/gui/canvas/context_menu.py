"""The canvas's right-click menu: what can be done with the objects under the mouse.

Right-clicking an object that is not selected selects it first (as labelme and CVAT do);
right-clicking empty canvas offers paste. Every edit goes through the document, so each
one is a single undo step.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from studio.core.errors import StudioError
from studio.gui.icons import class_swatch

ATTRIBUTE_FLAGS = ("difficult", "truncated", "occluded")  # yes/no attributes (VOC's)


def _guarded(view, fn, *args) -> None:
    try:
        fn(*args)
    except StudioError as exc:
        view.errorOccurred.emit(str(exc))


def object_menu(view, pos: QPointF) -> QMenu | None:
    """The menu for a right click at scene position `pos` (None when nothing applies)."""
    doc = view.document
    if doc.image_id is None:
        return None
    hit = view.item_at(pos, 3.0 / max(view.scale_factor(), 1e-6))
    if hit is not None and hit.ann_id not in doc.selected_ids:
        doc.select([hit.ann_id])
    ids = list(doc.selected_ids)
    on_image = {a.id: a for a in doc.project.annotations(doc.image_id)}  # one store read
    menu = QMenu(view)
    menu.setObjectName("canvasContextMenu")
    if ids:
        n = len(ids)
        anns = [on_image[i] for i in ids if i in on_image]
        current = {a.class_id for a in anns}
        classes = menu.addMenu(f"Change &class ({n} object{'s' if n > 1 else ''})")
        for c in doc.project.classes():
            act = QAction(class_swatch(c.color), c.name + (f"\t{c.hotkey}" if c.hotkey else ""),
                          classes)
            act.setCheckable(True)
            act.setChecked(current == {c.id})
            act.triggered.connect(lambda _=False, cid=c.id: _guarded(view, doc.set_class, ids, cid))
            classes.addAction(act)
        menu.addSeparator()
        menu.addAction("&Copy", lambda: doc.copy_selection())
        menu.addAction("D&uplicate", lambda: _guarded(view, doc.duplicate_selection))
        menu.addAction("&Delete", lambda: _guarded(view, doc.delete_annotations, ids))
        menu.addSeparator()
        menu.addAction("Convert to &polygon", lambda: view.convert_selection("polygon"))
        menu.addAction("Convert to &mask", lambda: view.convert_selection("mask"))
        menu.addSeparator()
        menu.addAction("Bring to &front", lambda: view.restack(ids, front=True))
        menu.addAction("Send to &back", lambda: view.restack(ids, front=False))
        menu.addSeparator()
        locked = bool(anns) and all(a.locked for a in anns)
        menu.addAction("&Hide", lambda: doc.set_hidden(ids, True))
        menu.addAction("Un&lock" if locked else "&Lock",
                       lambda: doc.set_locked(ids, not locked))
        flags = menu.addMenu("&Attributes")
        for name in ATTRIBUTE_FLAGS:
            act = flags.addAction(name.capitalize())
            act.setCheckable(True)
            act.setChecked(all(a.attributes.get(name) for a in anns))
            act.triggered.connect(lambda on, n=name: _guarded(view, doc.set_attribute, ids, n,
                                                               bool(on)))
    paste = menu.addAction("&Paste", lambda: _guarded(view, doc.paste))
    paste.setEnabled(doc.can_paste())
    hidden = [a.id for a in on_image.values() if a.hidden]
    if hidden:
        menu.addAction(f"Show {len(hidden)} hidden object(s)",
                       lambda: doc.set_hidden(hidden, False))
    return menu


def run_menu(menu: QMenu, global_pos) -> None:
    """Show the menu and wait for a choice (tests replace this)."""
    menu.exec(global_pos)


def show_object_menu(view, pos: QPointF, global_pos) -> QMenu | None:
    """Build the menu for scene position `pos` and show it at `global_pos`."""
    menu = object_menu(view, pos)
    if menu is not None:
        run_menu(menu, global_pos)
    return menu
