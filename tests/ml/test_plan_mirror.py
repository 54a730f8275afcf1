"""The mirror answer and the label-offset rule: where the plan keeps a flip off against a
"yes", it says so plainly on the question (Plan.questions[..].note), not only in the
reasons of the fields it changed."""

from __future__ import annotations

from test_plan import add_shifted_segmentation
from testutil import add_toy_segmentation

from studio.ml.plan import recommend


def _mirror(plan):
    return next(q for q in plan.questions if q.key == "mirror")


def test_a_yes_the_labels_contradict_is_said_on_the_question(project, tmp_path):
    add_shifted_segmentation(project, tmp_path / "img", 5, shift_rows=1)
    plan = recommend(project, mirror="yes", device="cpu")
    spec = plan.config["augment"]
    assert spec["hflip"]["enabled"] and not spec["vflip"]["enabled"]
    note = _mirror(plan).note
    assert note.startswith("You answered yes, but")
    assert "up-down flips and rotations" in note and "px above" in note
    assert "Augmentation" in note  # how to train with them anyway
    assert f"note (mirror): {note}" in plan.explain()  # the CLI prints it too


def test_no_note_when_the_plan_follows_the_answer(project, tmp_path):
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 3 + ["val"])
    for answer in ("yes", "no", None):
        plan = recommend(project, mirror=answer, device="cpu")
        assert _mirror(plan).note == "", answer
        assert "note (mirror)" not in plan.explain()
