"""Undoable store edits of the Inspect workspace, pushed on the document's undo stack of
the image they change (so Ctrl+Z in the Label workspace undoes them too), and the
workspace's own history of them (so Inspect's Undo takes back its last edit, whichever
image it changed):

- accept a post-processed mask (the whole image, or one connected component) into the
  image's annotations, as ``model:<run>`` masks, marking the image for review;
- accept a detection or instance run's kept detections (or one of them) as
  ``model:<run>`` boxes or masks with their scores, marking the image for review;
- accept or reject the model-sourced annotations a pre-labelling job stored.

What is accepted is planned below the GUI (`studio.ml.inspect.accept`); a plan that
deletes or cuts labels a person drew or imported is pushed only after they agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from studio.core.errors import ActionError, NotFoundError
from studio.gui.commands import AddOp, DeleteOp, MaskPatchOp, StoreCommand
from studio.ml.inspect.accept import AcceptPlan, SetStatusOp, model_annotation_ids

Confirm = Callable[[str], bool]  # a question for the person -> their yes


def _push(doc, image_id: int, text: str, ops: Sequence) -> StoreCommand:
    cmd = StoreCommand(doc, image_id, text, ops)
    doc.flush_edits()  # brush strokes still being written land first
    cmd.execute()  # a failing store raises here and nothing is pushed
    doc.undo_stack(image_id).push(cmd)
    return cmd


def human_labels_question(plan: AcceptPlan, name: str) -> str:
    return (f"{name} has {plan.human} label(s) drawn or imported by a person. "
            f"{plan.text} replaces them with the model's output (marked for review; Undo "
            "brings them back). Replace them?")


def push_plan(doc, plan: AcceptPlan, confirm: Confirm | None = None) -> StoreCommand | None:
    """Push an accept plan as one undo command; None when it would replace labels a person
    made and `confirm` (asked first) says no."""
    if plan.human and confirm is not None:
        name = doc.project.image(plan.image_id).name
        if not confirm(human_labels_question(plan, name)):
            return None
    ops: list = [DeleteOp(i) for i in plan.deletes]
    ops += [MaskPatchOp(ann.id, x0, y0, before, after, current=ann)
            for ann, x0, y0, before, after in plan.patches]
    ops += [AddOp(plan.image_id, class_id, kind, geometry, source, score)
            for class_id, kind, geometry, source, score in plan.adds]
    ops.append(SetStatusOp(plan.image_id, plan.status))
    return _push(doc, plan.image_id, plan.text, ops)


def accept_prelabels(doc, image_id: int, run_id: int) -> StoreCommand:
    """Keep the run's pre-labels of the image: it is marked done (undoable)."""
    if not model_annotation_ids(doc.project, image_id, run_id):
        raise NotFoundError(f"Image {image_id} has no pre-labels from run {run_id}.")
    return _push(doc, image_id, f"Accept run {run_id} pre-labels", [SetStatusOp(image_id, "done")])


def reject_prelabels(doc, image_id: int, run_id: int) -> StoreCommand:
    """Delete the run's pre-labels of the image and mark it new again (undoable)."""
    ids = model_annotation_ids(doc.project, image_id, run_id)
    if not ids:
        raise NotFoundError(f"Image {image_id} has no pre-labels from run {run_id}.")
    ops = [DeleteOp(i) for i in ids] + [SetStatusOp(image_id, "new")]
    return _push(doc, image_id, f"Reject run {run_id} pre-labels", ops)


class InspectHistory:
    """The edits Inspect pushed, newest last, each a group of commands (accepting three
    pre-labelled images is one step). Undo takes back the newest group on the undo stacks
    of the images it changed, whichever image is shown."""

    def __init__(self) -> None:
        self._steps: list[list[tuple[int, StoreCommand]]] = []

    def record(self, commands: Sequence[StoreCommand]) -> None:
        step = [(int(c.image_id), c) for c in commands if c is not None]
        if step:
            self._steps.append(step)

    def clear(self) -> None:
        self._steps.clear()

    def __len__(self) -> int:
        return len(self._steps)

    def undo(self, doc) -> str:
        """Undo the newest step; returns what was undone. An edit already undone elsewhere
        (Ctrl+Z in Label) is skipped."""
        while self._steps:
            step = self._steps.pop()
            done = []
            for image_id, cmd in reversed(step):
                stack = doc.undo_stack(image_id)
                if stack.index() > 0 and stack.command(stack.index() - 1) is cmd:
                    stack.undo()
                    done.append(cmd.text())
            if done:
                return done[-1] if len(done) == 1 else f"{done[0]} ({len(done)} images)"
        raise ActionError("Nothing of Inspect's to undo.")
