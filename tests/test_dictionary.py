import shutil

import pytest

from app.core import dictionary, rules
from app.paths import forms_dir


def test_every_kind_of_the_household_file_is_declared():
    d = dictionary.default()
    for kind in ["household", "member", "income", "helper", "measure", "plan", "visit"]:
        assert kind in d.kinds
    household = d.kinds["household"]
    assert [s.label for s in household.sections] == ["基本情况", "生产生活条件", "防返贫监测"]
    assert household.fields["main_cause"].required
    assert d.code_label("poverty_cause", "1") == "因病"
    assert d.code_label("relation", "01") == "户主/本人"


def test_code_lists_follow_the_reference():
    d = dictionary.default()
    assert len(d.codes["ethnicity"]) == 57  # 56 nationalities and 其他
    assert len(d.codes["political_status"]) == 13
    assert list(d.codes["poverty_cause"]) == [str(i) for i in range(1, 14)] + ["99"]


def test_every_named_rule_exists_and_show_if_refers_to_real_fields():
    d = dictionary.default()
    for kind in d.kinds.values():
        for name in kind.rules:
            assert name in rules.RULES
        for f in kind.fields.values():
            if f.show_if:
                assert f.show_if.field in kind.fields


def test_show_if_hides_until_the_condition_holds():
    f = dictionary.default().kinds["household"].fields["return_reason"]
    assert not f.visible({"status": "1"})
    assert f.visible({"status": "4"})


def _copy_forms(tmp_path):
    target = tmp_path / "forms"
    shutil.copytree(forms_dir(), target)
    return target


def test_a_field_with_an_unknown_type_is_reported_with_file_and_field(tmp_path):
    folder = _copy_forms(tmp_path)
    text = (folder / "visit.toml").read_text(encoding="utf-8").replace('type = "date"', 'type = "datum"', 1)
    (folder / "visit.toml").write_text(text, encoding="utf-8")
    with pytest.raises(dictionary.DictionaryError, match=r"visit.toml.*'date'.*datum"):
        dictionary.load(folder)


def test_a_rule_name_without_a_python_function_is_refused(tmp_path):
    folder = _copy_forms(tmp_path)
    text = (folder / "plan.toml").read_text(encoding="utf-8").replace("rules = []", 'rules = ["__import__"]')
    (folder / "plan.toml").write_text(text, encoding="utf-8")
    with pytest.raises(dictionary.DictionaryError, match="__import__"):
        dictionary.load(folder)
