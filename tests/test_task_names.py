"""Tasks are asked, not compared: outside the task registry (studio/ml/tasks/) no code
compares a value with a task name ("semantic", ...), tests membership in a list of task
names (DETECTION_TASKS, ("classification", "semantic")) or switches on a table of task
names (`{"classification": ..., "semantic": ...}[task]`). Code asks the task instead:
`task_of(name).label_map`, `TASK[name].meter(...)`.

Paint modes ("semantic" / "instance" painting in the Label workspace) share two of the
words but are not tasks: a comparison whose other side is a paint mode is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

from studio.ml.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
STUDIO = ROOT / "studio"
# the registry: the task modules own what differs between tasks
ALLOWED = ("studio/ml/tasks/",)
TASK_LISTS = {"TASKS", "DETECTION_TASKS", "PLAIN_TASKS"}


def _is_task_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in TASKS


def _names_tasks(node: ast.AST) -> bool:
    """A task name, a literal collection holding one, or a named list of task names."""
    if _is_task_name(node):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_task_name(e) for e in node.elts)
    if isinstance(node, ast.Name):
        return node.id in TASK_LISTS and node.id != "TASKS"
    if isinstance(node, ast.Attribute):
        return node.attr in TASK_LISTS and node.attr != "TASKS"
    return False


def _paint_mode(node: ast.AST) -> bool:
    return "mode" in ast.unparse(node).lower()


def task_comparisons(path: Path) -> list[str]:
    """`path:line: source` of each task-name comparison or switch in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(tree):
        hit = False
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_tasks(o) for o in operands):
                hit = not any(_paint_mode(o) for o in operands)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict):
            hit = sum(_is_task_name(k) for k in node.value.keys if k is not None) >= 2
        if hit:
            found.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:100]}")
    return found


def test_no_task_name_is_compared_outside_the_task_registry():
    found = []
    for path in sorted(STUDIO.rglob("*.py")):
        if not path.relative_to(ROOT).as_posix().startswith(ALLOWED):
            found += task_comparisons(path)
    assert not found, "ask the task (studio.ml.tasks) instead:\n" + "\n".join(found)


def test_the_check_finds_comparisons(tmp_path):
    """The check is not blind: each way of switching on a task name is found, paint
    modes and other strings are not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        'a = task == "semantic"\n'
        'b = cfg.task in ("classification", "semantic")\n'
        'c = meta["task"] in DETECTION_TASKS\n'
        'd = {"classification": 1, "semantic": 2}[task]\n'
        'e = mode == "instance"\n'
        'f = name == "semantic_v2"\n'
        'g = task in TASKS\n', encoding="utf-8")
    found = task_comparisons_of(sample)
    assert [line.split(":")[1] for line in found] == ["1", "2", "3", "4"]


def task_comparisons_of(path: Path) -> list[str]:
    """`task_comparisons` of a file outside the repository (for the self-test)."""
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return task_comparisons(path)
    finally:
        ROOT = saved
