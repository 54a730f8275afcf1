"""Relinking images whose files are missing, from the window: one file, or a folder in
which every missing image is found again by its name (the search runs in a worker); and
re-reading images whose files changed on disk since import (`studio-cli refresh`)."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from studio.core.relink import changed_images, refresh_images, relink_folder, relink_image
from studio.gui import dialogs


def _after(window, message: str) -> None:
    window.images_panel.refresh()
    if window.doc is not None:
        window.doc.reload_image()
    window.statusBar().showMessage(message, 8000)


def ask_relink_file(window) -> None:
    """Ask where the current image's file is now and point the project at it."""
    doc = window.doc
    if doc is None or doc.image_id is None:
        return
    rec = doc.project.image(doc.image_id)
    start = str(rec.abs_path.parent) if rec.abs_path.parent.is_dir() else ""
    suffix = rec.abs_path.suffix or ".*"
    path, _ = QFileDialog.getOpenFileName(
        window, f"Where is {rec.name} now?", start,
        f"{rec.name} (*{suffix});;Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp);;All (*)")
    if path:
        window.run_job("Relinking...", relink_image, doc.project, rec.id, path,
                       on_result=lambda _r: _after(window, f"{rec.name} relinked to {path}"))


def ask_relink_folder(window) -> None:
    """Ask for a folder and re-point every missing image to the file of its name there."""
    if window.project is None:
        return
    folder = QFileDialog.getExistingDirectory(window, "Folder that holds the missing images")
    if not folder:
        return

    def done(report) -> None:
        _after(window, report.summary())
        if report.not_found or report.refused:
            details = "\n".join([f"still missing: {p}" for p in report.not_found]
                                + [f"{p}: {r}" for p, r in report.refused])
            dialogs.show_report(window, "Relink images", report.summary(), details)

    window.run_job("Looking for the missing images...",
                   lambda token, project, f: relink_folder(project, f, stop=lambda: token.cancelled),
                   window.project, folder, on_result=done, cancellable=True)


def reread_changed(project) -> str:
    """Re-read every image whose file changed size on disk; the report's one-line summary."""
    changed = changed_images(project)
    if not changed:
        return "Every image file is as recorded."
    return refresh_images(project, changed).summary()


def reread_changed_images(window) -> None:
    """Image > Re-read changed images: in a worker, then the views show the new sizes."""
    if window.project is not None:
        window.run_job("Re-reading changed images...", reread_changed, window.project,
                       on_result=lambda text: _after(window, text))


def on_notice_action(window, name: str) -> None:
    """A button of the canvas notice was clicked."""
    handlers = {"relink_file": ask_relink_file, "relink_folder": ask_relink_folder,
                "add_images": lambda w: w.choose_images(), "import": lambda w: w.import_dataset()}
    handler = handlers.get(name)
    if handler is not None:
        handler(window)
