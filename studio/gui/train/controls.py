"""The Train workspace's top rows: task, recommended settings, config files, and
Start / Stop / Resume."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from studio.gui.train.form import ChoiceEdit
from studio.gui.train.tips import TIPS

MIRROR_QUESTION = ("Can an image be mirrored (left-right, up-down) or rotated without "
                   "changing its label? Cells and aerial images: yes; digits and text: no.")


class Controls(QWidget):
    def __init__(self, backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task = ChoiceEdit([(t, t) for t in backend.TASKS])
        self.task.setToolTip(TIPS["task"])
        self.recommend = QPushButton("Recommended")
        self.mirror = ChoiceEdit([(None, "not answered"), (True, "yes"), (False, "no")])
        self.mirror.setToolTip(MIRROR_QUESTION)
        self.recommend.setToolTip("Fill every setting from what this project's data says "
                                  "(image sizes, classes, their balance, the device); each "
                                  "recommended value shows its reason and can be changed.")
        self.load = QPushButton("Load...")
        self.load.setToolTip("Load a config file (JSON or YAML, as `studio-cli train --config` "
                             "takes).")
        self.save = QPushButton("Save...")
        self.save.setToolTip("Save these settings as a config file for `studio-cli train "
                             "--config`.")
        self.reset = QPushButton("Defaults")
        self.reset.setToolTip("Reset every setting to the task's defaults.")
        self.start = QPushButton("\u25b6 Start")
        self.start.setToolTip("Check the settings and train a new run with them.")
        self.stop = QPushButton("\u25a0 Stop")
        self.stop.setToolTip("Stop after the current batch; the run keeps a usable last "
                             "checkpoint and can be resumed.")
        self.resume = QPushButton("Resume")
        self.resume.setToolTip("Continue the run selected in the history (else the latest) "
                               "from its last checkpoint.")
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #c0392b;")
        self.problem.setWordWrap(True)
        self.problem.hide()
        # where the recommendation departs from the mirror answer, and why
        self.mirror_note = QLabel()
        self.mirror_note.setStyleSheet("color: #8a5a00;")
        self.mirror_note.setWordWrap(True)
        self.mirror_note.hide()
        self.reasons = QLabel()
        self.reasons.setStyleSheet("color: #2c6e49; font-style: italic;")
        self.reasons.setWordWrap(True)
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.addWidget(QLabel("Task"), 0, 0)
        grid.addWidget(self.task, 0, 1)
        grid.addWidget(self.recommend, 0, 2)
        question = QLabel("Mirror/rotate OK?")
        question.setToolTip(MIRROR_QUESTION)
        grid.addWidget(question, 0, 3)
        grid.addWidget(self.mirror, 0, 4)
        files = QHBoxLayout()
        for b in (self.load, self.save, self.reset):
            files.addWidget(b)
        files.addStretch(1)
        for b in (self.start, self.stop, self.resume):
            b.setMinimumWidth(80)
            files.addWidget(b)
        grid.addLayout(files, 1, 0, 1, 5)
        grid.addWidget(self.problem, 2, 0, 1, 5)
        grid.addWidget(self.reasons, 3, 0, 1, 5)
        grid.addWidget(self.mirror_note, 4, 0, 1, 5)
        grid.setColumnStretch(5, 1)
        self.set_enabled(False, False)

    def set_enabled(self, project_open: bool, running: bool) -> None:
        for b in (self.load, self.save, self.reset, self.task):
            b.setEnabled(not running)
        self.recommend.setEnabled(project_open and not running)
        self.start.setEnabled(project_open and not running)
        self.resume.setEnabled(project_open and not running)
        self.stop.setEnabled(running)

    def show_mirror_note(self, text: str) -> None:
        self.mirror_note.setText(f"\u26a0 Mirror/rotate: {text}" if text else "")
        self.mirror_note.setVisible(bool(text))

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
