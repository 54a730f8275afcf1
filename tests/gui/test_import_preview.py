"""The import dialog's look at label-image folders: which folder holds the images, which
the labels, the first pair, and instance ids or classes with a button to switch."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest


def _dataset(root):
    rng = np.random.default_rng(0)
    for n, k in enumerate((9, 12, 7)):
        label = np.zeros((48, 64), np.uint16)
        for i in range(k):
            y, x = 2 + 10 * (i // 6), 2 + 10 * (i % 6)
            label[y:y + 6, x:x + 6] = i + 1
        label[44:47, 50:60] = 2  # object 2 in two parts
        img = rng.integers(0, 50, (48, 64, 3)).astype(np.uint8)
        img[label > 0] += 150
        for path, arr in ((root / "Photos" / f"c{n}.png", img),
                          (root / "Annot" / f"c{n}_mask.png", label)):
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), arr)


def test_preview_finds_the_folders_and_offers_instances(qtbot, tmp_path):
    from studio.gui.dialogs import ImportDialog
    from studio.gui.workers import WorkerPool

    _dataset(tmp_path / "ds")
    pool = WorkerPool(1)
    dialog = ImportDialog(fmt="coco", workers=pool)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.preview.isVisible()  # only label-image formats
    dialog.format.setCurrentIndex(dialog.format.findData("masks"))
    assert dialog.preview.isVisible()
    QTest.keyClicks(dialog.source, str(tmp_path / "ds"))
    QTest.mouseClick(dialog.preview.look, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Images: Photos/" in dialog.preview.info.text())
    assert "Labels: Annot/" in dialog.preview.info.text()
    assert "3 pairs" in dialog.preview.info.text()
    assert "instance ids" in dialog.preview.info.text()
    assert not dialog.preview.image.pixmap().isNull()
    assert not dialog.preview.label.pixmap().isNull()
    assert dialog.preview.switch.isVisible()
    assert dialog.preview.switch.text() == "Import as instances"
    dialog.grab().save(str(tmp_path / "import_preview.png"))
    QTest.mouseClick(dialog.preview.switch, Qt.MouseButton.LeftButton)
    assert dialog.format.currentData() == "instances"
    assert not dialog.preview.switch.isVisible()
    assert dialog.values()[:3] == ("instances", tmp_path / "ds", None)
    pool.shutdown()


def test_preview_says_when_nothing_pairs(qtbot, tmp_path):
    from studio.gui.dialogs import ImportDialog
    from studio.gui.workers import WorkerPool

    (tmp_path / "empty" / "a").mkdir(parents=True)
    pool = WorkerPool(1)
    dialog = ImportDialog(fmt="instances", workers=pool)
    qtbot.addWidget(dialog)
    dialog.show()
    QTest.keyClicks(dialog.source, str(tmp_path / "empty"))
    QTest.mouseClick(dialog.preview.look, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "No images and label images" in dialog.preview.info.text())
    assert not dialog.preview.switch.isVisible()
    pool.shutdown()
