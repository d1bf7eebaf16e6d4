"""A strict assignment.toml: a misspelled or mistyped key is an error that says what to
write instead, never a default used in silence."""
from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignment.spec import SPEC_KEYS, AssignmentError, load_assignment

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "reference" / "conv_bn.py"


def spec(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tests").mkdir(exist_ok=True)
    (tmp_path / "reference.py").write_text(REFERENCE.read_text())
    (tmp_path / "assignment.toml").write_text('reference = "reference.py"\nexercises = ["happyModel"]\n' + text)
    return tmp_path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(AssignmentError) as caught:
        load_assignment(spec(tmp_path, text))
    message = str(caught.value)
    assert str(tmp_path / "assignment.toml") in message  # names the file
    return message


def test_shipped_assignments_load_under_the_strict_spec():
    for name in ("conv_bn", "dls_c4w1a2"):
        assert load_assignment(name).total_points is not None


def test_a_complete_valid_spec_loads_with_its_values(tmp_path):
    (tmp_path / "helper.py").write_text("X = 1\n")
    (tmp_path / "probes.py").write_text("def p():\n    return 1\n")
    a = load_assignment(spec(tmp_path, 'name = "demo"\ntitle = "Demo"\nversion = 2\ntests = "tests"\n'
                                       'keras = "2"\ncall_timeout = 5\nsupport = ["helper.py"]\nsecret = "s"\n'
                                       'total_points = 7\nprobes = "probes.py"\nmaster = "m.py"\n'
                                       '[coursera]\nparts = { P1 = ["happyModel"] }\n'))
    assert (a.name, a.title, a.version, a.keras, a.call_timeout, a.secret, a.total_points) == \
        ("demo", "Demo", "2", "2", 5.0, "s", 7)
    assert a.support == ((tmp_path / "helper.py").resolve(),) and a.probes == (tmp_path / "probes.py").resolve()
    assert a.extra == {"master": "m.py", "coursera": {"parts": {"P1": ["happyModel"]}}}


def test_misspelled_key_names_the_closest_valid_one(tmp_path):
    message = error(tmp_path, "call_timout = 5\n")
    assert "unknown key `call_timout`: did you mean `call_timeout`?" in message


def test_unknown_key_with_nothing_close_lists_the_valid_keys(tmp_path):
    message = error(tmp_path, "colour = 5\n")
    assert "unknown key `colour`" in message and "did you mean" not in message
    assert all(k.name in message for k in SPEC_KEYS)


def test_misspelled_key_inside_a_table(tmp_path):
    message = error(tmp_path, "[coursera]\nprats = {}\n")
    assert "unknown key `prats` in [coursera]: did you mean `parts`?" in message


@pytest.mark.parametrize("line, expected", [
    ('call_timeout = "30"', "`call_timeout` must be a number, not '30'"),
    ("call_timeout = true", "`call_timeout` must be a number, not True"),
    ("call_timeout = 0", "`call_timeout` must be more than 0 seconds"),
    ("total_points = -1", "`total_points` must be more than 0"),
    ('support = "faces.py"', "`support` must be a list of strings"),
    ("secret = 12", "`secret` must be a string in quotes, not 12"),
    ('keras = "4"', '`keras` must be "3"'),
    ("coursera = 1", "`coursera` must be a table"),
])
def test_wrong_types_and_values_are_explained(tmp_path, line, expected):
    assert expected in error(tmp_path, line + "\n")


def test_every_problem_is_reported_at_once(tmp_path):
    message = error(tmp_path, "call_timout = 5\ntotal_pionts = 3\nsecret = 1\n")
    assert "3 problems" in message
    assert "`call_timeout`?" in message and "`total_points`?" in message and "`secret` must be" in message


def test_missing_required_keys_and_files(tmp_path):
    (tmp_path / "assignment.toml").write_text('title = "x"\n')
    with pytest.raises(AssignmentError, match="missing key `exercises`.*\n.*missing key `reference`"):
        load_assignment(tmp_path)
    message = error(tmp_path, 'support = ["nowhere.py"]\n')
    assert "support file" in message and "nowhere.py" in message and "does not exist" in message


def test_empty_or_repeated_exercises(tmp_path):
    (tmp_path / "reference.py").write_text("")
    for exercises, expected in (("[]", "`exercises` is empty"), ('["a", "a"]', "names a function twice")):
        (tmp_path / "assignment.toml").write_text(f'reference = "reference.py"\nexercises = {exercises}\n')
        with pytest.raises(AssignmentError, match=expected):
            load_assignment(tmp_path)


# ------------------------------------------------------------------ [modules]: the course's helper modules

def test_modules_table_loads_stand_ins_and_expected_missing(tmp_path):
    (tmp_path / "standins").mkdir()
    (tmp_path / "standins" / "course_utils.py").write_text("from math import pi\n")
    a = load_assignment(spec(tmp_path, '[modules]\ncourse_utils = "standins/course_utils.py"\n'
                                       'test_utils = "missing"\n"keras.utils.vis_utils" = "missing"\n'))
    assert a.modules == (("course_utils", (tmp_path / "standins" / "course_utils.py").resolve()),
                         ("test_utils", None), ("keras.utils.vis_utils", None))
    assert a.missing_modules == {"test_utils", "keras.utils.vis_utils"}
    # The stand-in is sent into the sandbox under its module's name, whatever its file is called.
    assert a.support_files() == {"course_utils.py": "from math import pi\n"}


def test_a_stand_in_is_part_of_the_fingerprint(tmp_path):
    (tmp_path / "course_utils.py").write_text("A = 1\n")
    folder = spec(tmp_path, '[modules]\ncourse_utils = "course_utils.py"\n')
    before = load_assignment(folder).fingerprint
    (tmp_path / "course_utils.py").write_text("A = 2\n")
    assert load_assignment(folder).fingerprint != before


@pytest.mark.parametrize("table, expected", [
    ('test_utils = "mising"', "[modules] `test_utils` = 'mising': write \"missing\" for a module expected to "
                              "be absent, or the path of a stand-in `.py` file: did you mean `missing`?"),
    ("test_utils = 1", "[modules] `test_utils` must be \"missing\" or the path of a stand-in file"),
    ('keras.utils.vis_utils = "missing"', 'quote a dotted module name, e.g. "keras.utils" = "missing"'),
    ('"keras.utils.x" = "x.py"', "a stand-in replaces a top-level module"),
    ('"2bad" = "missing"', "by their import name"),
])
def test_modules_values_are_checked_strictly(tmp_path, table, expected):
    assert expected in error(tmp_path, f"[modules]\n{table}\n")


def test_a_stand_in_that_does_not_exist_is_named(tmp_path):
    message = error(tmp_path, '[modules]\nresnets_utils = "standins/resnets_utils.py"\n')
    assert "[modules] stand-in `resnets_utils`" in message and "does not exist" in message


def test_shipped_assignments_declare_their_course_modules():
    c4w2 = load_assignment("dls_c4w2a1")
    assert c4w2.missing_modules == {"public_tests", "test_utils", "outputs", "scipy", "pydot"}
    assert "resnets_utils.py" in c4w2.support_files()
    c4w1 = load_assignment("dls_c4w1a2")
    assert c4w1.missing_modules == {"test_utils", "scipy", "pandas"} and "cnn_utils.py" in c4w1.support_files()
    assert load_assignment("conv_bn").modules == ()


def test_a_stand_in_may_not_share_its_name_with_a_support_file(tmp_path):
    (tmp_path / "course_utils.py").write_text("A = 1\n")
    (tmp_path / "standins").mkdir()
    (tmp_path / "standins" / "course_utils.py").write_text("A = 2\n")
    message = error(tmp_path, 'support = ["course_utils.py"]\n[modules]\ncourse_utils = "standins/course_utils.py"\n')
    assert "course_utils.py is both a support file and a [modules] stand-in" in message
