"""The Train form generated from the engine's field specs: editors read back what they
show, every config the engine accepts loads into the form and reads back the same, errors
sit beside the field their path names, and reasons of recommended values go stale."""

from __future__ import annotations

import copy
import json
import random

import pytest
import yaml
from PySide6.QtCore import Qt

from studio.core.errors import ConfigError
from studio.gui.train.editors import (
    ChoiceEdit,
    JsonEdit,
    ListEdit,
    NestedListEdit,
    NumberEdit,
    number_text,
    parse_number,
)
from studio.gui.train.form import ConfigForm
from studio.gui.train.workspace import TrainWorkspace
from studio.ml.config import FieldSpec, config_fields, default_config, validate_config

TASKS = ("classification", "semantic", "detection", "instance")


# --- editors --------------------------------------------------------------------------------
def test_numbers_read_back_exactly_or_stay_text_for_the_engine_to_name(qtbot):
    rng = random.Random(0)
    edit = NumberEdit("float")
    qtbot.addWidget(edit)
    for value in [0.1, 1e-8, 3e-4, 2.0, 1e30, 123456.789, -0.5] + [
            rng.uniform(-1e3, 1e3) for _ in range(200)] + [rng.lognormvariate(-10, 5)
                                                           for _ in range(200)]:
        edit.set_value(value)
        assert edit.value() == value and isinstance(edit.value(), float), edit.text()
    edit.set_value(30.0)
    assert edit.text() == "30"
    assert parse_number("30") == 30 and parse_number("1e-3") == 1e-3
    assert parse_number("1e3", "int") == 1000 and parse_number("2", "float") == 2.0
    assert parse_number("fast") == "fast" and parse_number("2.5", "int") == 2.5
    assert parse_number("", allow_none=True) is None


def test_lists_and_anchor_sizes_per_level_read_back(qtbot):
    anchors = NestedListEdit("int")
    qtbot.addWidget(anchors)
    anchors.set_value([[16], [32], [64], [128]])
    assert anchors.text() == "16; 32; 64; 128"
    assert anchors.value() == [[16], [32], [64], [128]]
    anchors.set_value([[16, 24], [32, 48]])
    assert anchors.text() == "16, 24; 32, 48" and anchors.value() == [[16, 24], [32, 48]]
    qtbot.keyClick(anchors, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(anchors, "8; 16, 20 ; 40")
    assert anchors.value() == [[8], [16, 20], [40]]
    for typed in ("[16], [32]", "[[16], [32]]"):  # JSON, as the old field showed it
        anchors.setText(typed)
        assert anchors.value() == [[16], [32]]
    anchors.setText("16; x")
    assert anchors.value() == [[16], ["x"]]  # the engine says what is wrong, at its path
    numbers = ListEdit("float", allow_none=True)
    qtbot.addWidget(numbers)
    numbers.set_value([-5.0, 7.5])
    assert numbers.text() == "-5, 7.5" and numbers.value() == [-5.0, 7.5]
    numbers.setText("")
    assert numbers.value() is None
    ints = ListEdit("int")
    qtbot.addWidget(ints)
    ints.setText("3, 1, 2")
    assert ints.value() == [3, 1, 2]
    ints.setText("")
    assert ints.value() == []


def test_choices_json_and_none(qtbot):
    channels = ChoiceEdit([("auto", "auto"), (1, "1"), (3, "3")])
    qtbot.addWidget(channels)
    channels.set_value(3)
    assert channels.value() == 3
    val = ChoiceEdit([("val", "val"), (None, "none")])
    qtbot.addWidget(val)
    val.set_value(None)
    assert val.value() is None
    val.set_value("elsewhere")  # a loaded value the list lacks stays, for the engine
    assert val.value() == "elsewhere"
    norm = JsonEdit()
    qtbot.addWidget(norm)
    for value in ("auto", {"mean": [0.5], "std": [0.25]}, [1, 2], 3, None):
        norm.set_value(value)
        assert norm.value() == value
    assert number_text(1e-8) == "1e-08"


# --- the form ---------------------------------------------------------------------------
def _form(qtbot, specs) -> ConfigForm:
    form = ConfigForm()
    form.set_specs(specs)
    for field in form.fields.values():
        qtbot.addWidget(field.row)
        qtbot.addWidget(field.label)
    return form


def test_every_field_by_its_kind_and_tooltip(qtbot):
    specs = [s for s in config_fields("detection") if s.path != "task"]
    form = _form(qtbot, specs)
    assert [s.path for s in specs] == list(form.fields)
    anchors = form.fields["model_options.anchor_sizes"]
    assert isinstance(anchors.editor, NestedListEdit)
    assert anchors.editor.text() == "16; 32; 64; 128"
    assert "level" in anchors.editor.toolTip() and "px" in anchors.editor.toolTip()
    lr = form.fields["optimizer.lr"].editor
    assert isinstance(lr, NumberEdit) and lr.toolTip().startswith(
        next(s.help for s in specs if s.path == "optimizer.lr"))
    assert "loss.class_weights" not in form.fields  # detection has none


def test_errors_are_shown_beside_the_field_their_path_names(qtbot):
    form = _form(qtbot, config_fields("detection"))
    error = ConfigError("'model_options.anchor_sizes' must be ...",
                        path="model_options.anchor_sizes")
    assert form.show_error(error) == "model_options.anchor_sizes"
    shown = [p for p, f in form.fields.items() if not f.error.isHidden()]
    assert shown == ["model_options.anchor_sizes"]
    assert form.show_error(ConfigError("bad", path="detection")) == "detection.score_threshold"
    assert form.show_error(ConfigError("'optimizer.lr' must be a number")) is None  # no path
    assert all(f.error.isHidden() for f in form.fields.values())
    # a person's edit clears the field's error
    form.show_error(ConfigError("bad", path="epochs"))
    qtbot.keyClicks(form.fields["epochs"].editor, "0")
    assert form.fields["epochs"].error.isHidden()


def test_a_changed_recommended_value_says_what_was_recommended(qtbot):
    form = _form(qtbot, config_fields("classification"))
    form.load({"epochs": 69, "batch_size": 8, "model_options": {"width": 16, "depth": 3}})
    left = form.show_reasons({"epochs": "69: about 600 optimizer steps.",
                              "model_options": "a small network.", "nowhere": "kept"})
    assert left == {"nowhere": "kept"}
    epochs = form.fields["epochs"]
    assert epochs.reason.text() == "69: about 600 optimizer steps."
    qtbot.keyClick(epochs.editor, Qt.Key.Key_Backspace)  # 69 -> 6
    assert epochs.reason.text() == "Changed from the recommended 69."
    assert not epochs.reason.isHidden()
    qtbot.keyClicks(epochs.editor, "9")  # back to what was recommended: the reason again
    assert epochs.reason.text() == "69: about 600 optimizer steps."
    first_option = next(p for p in form.fields if p.startswith("model_options."))
    holder = form.fields[first_option]
    assert holder.reason.text() == "a small network."
    width = form.fields["model_options.width"].editor
    width.setText("32")
    width.textEdited.emit("32")
    assert holder.reason.text().startswith("Changed from the recommended ")
    assert holder.reason.text() == "Changed from the recommended width 16."


# --- round trips through the window ---------------------------------------------------
@pytest.fixture
def train(qtbot):
    workspace = TrainWorkspace()
    qtbot.addWidget(workspace)
    workspace.load_engine()
    qtbot.waitUntil(lambda: workspace.backend is not None, timeout=60000)
    workspace.workers.wait()
    yield workspace
    workspace.workers.wait()
    workspace.shutdown()


def assert_round_trip(train, cfg: dict) -> None:
    """`cfg` shown in the form reads back unchanged, and every field of it is a field of
    the form (the form alone writes all of it)."""
    train.set_config(copy.deepcopy(cfg))
    assert train.config() == cfg
    assert all(train.isAncestorOf(f.row) for f in train.form.fields.values())  # all shown
    alone = train.form.apply({"task": cfg["task"]})
    assert alone == cfg, sorted(set(_flat(alone).items()) ^ set(_flat(cfg).items()))


def _flat(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value)
    return out


@pytest.mark.parametrize("task", TASKS)
def test_default_configs_round_trip(qtbot, train, task):
    for variant in ("cpu", "gpu"):
        assert_round_trip(train, default_config(task, variant))
    models = train.model_panel.model
    assert [models.itemData(i) for i in range(models.count())] == _task_models(task)
    train.workers.wait()


@pytest.mark.parametrize("task", TASKS)
def test_the_clis_printed_default_config_loads(qtbot, train, task, tmp_path, capsys):
    from studio.cli import main

    assert main(["train", "--print-default-config", "--task", task]) == 0
    printed = json.loads(capsys.readouterr().out)
    path = tmp_path / "default.json"
    path.write_text(json.dumps(printed, indent=2))
    assert train.load_config(str(path))  # the Load... button with its file chosen
    assert train.config() == printed
    yaml_path = tmp_path / "default.yaml"  # the form reads what the CLI reads
    yaml_path.write_text(yaml.safe_dump(printed))
    train.reset()
    assert train.load_config(str(yaml_path))
    assert train.config() == printed
    train.workers.wait()


def random_config(task: str, rng: random.Random, project=None) -> dict:
    """A valid config with random values for many fields (chosen within each field's
    kind, bounds and choices); fields whose value the engine refuses with others (a
    range given max < min, freezing without weights) go back to their default."""
    cfg = default_config(task)
    cfg["model"] = rng.choice(_task_models(task))
    cfg["model_options"] = {}
    specs = [s for s in config_fields(task, cfg)
             if s.path not in ("task", "model", "pretrained")]
    for spec in specs:
        if rng.random() < 0.6:
            _set(cfg, spec.path, _random_value(spec, rng))
    reverted: set[str] = set()
    for _ in range(200):
        try:
            return validate_config(cfg, project).to_dict()
        except ConfigError as exc:
            path = exc.path
            assert path, f"the engine named no field: {exc}"
            spec = next((s for s in specs if s.path == path or path.startswith(s.path + ".")
                         or s.path.startswith(path + ".")), None)
            assert spec is not None, f"no field for {path}: {exc}"
            # at its default and still refused: it is refused with its neighbours (min_size
            # above max_size, anchor sizes for another number of levels)
            section = spec.path.rpartition(".")[0]
            again = [s for s in specs if s.path.rpartition(".")[0] == section] \
                if spec.path in reverted else [spec]
            for s in again:
                _set(cfg, s.path, copy.deepcopy(s.default))
            reverted.add(spec.path)
    raise AssertionError("no valid random config")


def _task_models(task: str) -> list[str]:
    from studio.ml.models.registry import list_models

    return [s.name for s in list_models(task)]


def _set(cfg: dict, path: str, value) -> None:
    keys = path.split(".")
    node = cfg
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _number(spec: FieldSpec, rng: random.Random, integer: bool):
    lo = spec.minimum if spec.minimum is not None else -1000
    hi = spec.maximum if spec.maximum is not None else lo + 1000
    hi = min(hi, lo + 1000)
    if integer:
        return rng.randint(int(lo), int(hi))
    return rng.uniform(lo, hi)


def _random_value(spec: FieldSpec, rng: random.Random):
    kind = spec.kind
    if spec.optional and rng.random() < 0.2:
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind in ("int", "float"):
        return _number(spec, rng, kind == "int")
    if kind == "enum":
        return rng.choice(spec.choices)
    if kind in ("int_list", "float_list"):
        lo = spec.min_len or 0
        n = rng.randint(lo, min(spec.max_len if spec.max_len is not None else lo + 4, lo + 4))
        return [_number(spec, rng, kind == "int_list") for _ in range(n)]
    if kind == "int_list_list":
        lo = spec.min_len or 1
        n = rng.randint(lo, min(spec.max_len or lo + 4, lo + 4))
        return [[_number(spec, rng, True) for _ in range(rng.randint(1, 3))] for _ in range(n)]
    return copy.deepcopy(spec.default)  # text and JSON fields keep their default


@pytest.mark.parametrize("task", TASKS)
def test_random_valid_configs_round_trip(qtbot, train, task):
    rng = random.Random(TASKS.index(task))
    changed = 0
    for _ in range(12):
        cfg = random_config(task, rng)
        defaults = _flat(default_config(task))
        changed += sum(value != defaults.get(path) for path, value in _flat(cfg).items())
        assert_round_trip(train, cfg)
    assert changed > 100  # the configs really differ from the defaults
    train.workers.wait()


@pytest.mark.parametrize("task", TASKS)
def test_recommended_configs_round_trip(qtbot, train, task, tmp_path):
    from testutil import tiny_task_project

    from studio.ml.plan import recommend

    with tiny_task_project(tmp_path / "proj", task) as project:
        for mirror in (None, True, False):
            plan = recommend(project, task, mirror=mirror)
            cfg = plan.config if isinstance(plan.config, dict) else plan.config.to_dict()
            assert_round_trip(train, cfg)
    train.workers.wait()


def test_a_loaded_non_bool_reads_back_until_a_person_clicks(qtbot):
    from studio.gui.train.editors import BoolEdit

    box = BoolEdit("on")
    qtbot.addWidget(box)
    box.show()
    box.set_value("false")  # from a file: not a bool, and not True either
    assert box.value() == "false"
    assert box.checkState() == Qt.CheckState.PartiallyChecked
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert box.value() in (True, False) and not box.isTristate()
    box.set_value(True)
    assert box.value() is True


def test_a_loaded_config_with_a_bad_value_shows_it_beside_its_field(qtbot, train, tmp_path):
    cfg = default_config("detection")
    cfg["amp"] = "false"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert train.load_config(str(path))
    assert train.config()["amp"] == "false"  # shown as it is, not turned into true
    train.validate()
    field = train.form.fields["amp"]
    qtbot.waitUntil(lambda: not field.error.isHidden(), timeout=30000)
    assert "'amp'" in field.error.text()
    train.workers.wait()


def test_augmentation_tab_hides_the_ops_detection_and_instance_refuse(qtbot, train):
    """Choosing the task with the keyboard in the task list: detection and instance hide
    the ops the engine refuses for them (their fields stay, off, so the config still reads
    back whole and validates); classification shows them again."""
    from PySide6.QtWidgets import QApplication

    from studio.ml.config import DETECTION_UNSUPPORTED_AUGMENT

    panel, combo = train.augment_panel, train.controls.task
    refused = set(DETECTION_UNSUPPORTED_AUGMENT)
    assert refused <= set(panel.groups)

    def shown() -> set[str]:
        return {op for op, box in panel.groups.items() if box.isVisibleTo(panel)}

    assert refused <= shown()  # classification, the first task
    for key, task in (("d", "detection"), ("i", "instance"), ("c", "classification")):
        qtbot.wait(QApplication.keyboardInputInterval() + 50)  # a new keyboard search
        qtbot.keyClicks(combo, key)
        assert train.task == task
        if task == "classification":
            assert refused <= shown()
        else:
            assert not refused & shown() and {"hflip", "vflip", "brightness"} <= shown()
            cfg = train.config()
            assert all(not cfg["augment"][op]["enabled"] for op in refused)
            assert validate_config(cfg).task == task
    train.workers.wait()
