"""A county whose division table stops at townships (as the shared division data of all China does:
`shared/data/divisions/`) has no villages yet. A household's village code must then at least lie
under one of its townships (its first 9 digits); before, any code was taken, so a typing slip put a
household in a village no register or township book would ever list."""

from __future__ import annotations

import pytest

from app.services import households
from app.services.households import InputError
from app.tables import importer
from tests.factories import household
from tests.test_tables import HEAD1, HEAD2, REQUIRED, REQUIRED_VALUES, WIFE1, ledger


def townships_only(store) -> None:
    store.set_divisions([("522634", "雷山县", "county", None), ("522634101", "西江镇", "township", "522634"),
                         ("522634102", "永乐镇", "township", "522634")])


def test_a_village_under_a_known_township_is_taken_and_one_elsewhere_is_refused(make_store):
    store = make_store(role="county")
    townships_only(store)
    saved = households.save(store, household(village_code="522634102207"))  # 永乐镇, a village not listed yet
    assert store.get(saved.household_id).village_code == "522634102207"
    before = store.count("household")
    for wrong, why in (("522634103201", "不在本库的任何乡(镇)之下"),  # a township this county does not have
                       ("110101001001", "不属于本县")):  # another province: its county code is named
        with pytest.raises(InputError) as refused:
            households.save(store, household(village_code=wrong, seq=7))
        message = str(refused.value)
        assert wrong in message and why in message, message
        assert (wrong[:9] if why.startswith("不在") else f"{wrong[:6]} 不是本县的代码 522634") in message, message
        with pytest.raises(InputError):  # not even as a draft
            households.save(store, household(village_code=wrong, seq=7), allow_errors=True)
    assert store.count("household") == before


def test_once_villages_are_listed_only_they_are_taken(make_store):
    store = make_store(role="county")
    townships_only(store)
    store.set_divisions([("522634101201", "石桥村", "village", "522634101")])
    with pytest.raises(InputError, match="不在本库的行政区划中"):
        households.save(store, household(village_code="522634102207"))  # under a known township, but not listed
    households.save(store, household(village_code="522634101201"))


def test_a_database_without_divisions_checks_nothing(make_store):
    store = make_store()
    assert households.known_villages(store) is None
    households.save(store, household(village_code="110101001001"))


def test_import_table_checks_each_village_code_against_the_townships_and_names_the_villages_taken(make_store, tmp_path):
    """A county's first village ledger, before its division table has villages: a code under one of
    its townships is taken (and the report says once which villages the county should now add, for
    the registers to print their names); one under no township of it, or of another county, is
    refused in the row's 村代码 column with what is wrong with it."""
    store = make_store(role="county")
    townships_only(store)
    header = ["村代码", "户主姓名", "家庭人口", "姓名", "公民身份号码", "与户主关系", "性别", *REQUIRED]
    rows = [["522634102207", "欧阳明远", 1, "欧阳明远", HEAD1, "户主", "男", *REQUIRED_VALUES],
            ["522634109201", "诸葛长青", 1, "诸葛长青", HEAD2, "户主", "男", *REQUIRED_VALUES],
            ["110101001001", "司马秀兰", 1, "司马秀兰", WIFE1, "户主", "女", *REQUIRED_VALUES]]
    path = ledger(tmp_path / "永乐镇台账.xlsx", header, rows)
    for dry_run in (True, False):
        report = (importer.dry_run if dry_run else importer.commit)(store, importer.analyse(store, path))
        assert (report.created, report.rejected_households) == (1, 2)
        refused = {r.row: r for r in report.rejections}
        assert refused[3].column == "村代码" and "522634109 不是本库的乡镇代码" in refused[3].reason
        assert "请核对村代码的前 9 位" in refused[3].reason
        assert refused[4].column == "村代码" and "不属于本县" in refused[4].reason and "110101" in refused[4].reason
        note = next(n for n in report.notes if "还没有村" in n)
        assert "522634102207(永乐镇)" in note and "参考数据 › 行政区划" in note and "村有册" in note
        assert note in report.summary()
    assert [d["village_code"] for d in households.documents(store)] == ["522634102207"]


def test_import_table_says_nothing_of_unlisted_villages_once_villages_are_listed(make_store, tmp_path):
    store = make_store(role="county")
    townships_only(store)
    store.set_divisions([("522634102207", "白岩村", "village", "522634102")])
    header = ["村代码", "户主姓名", "家庭人口", "姓名", "公民身份号码", "与户主关系", "性别", *REQUIRED]
    path = ledger(tmp_path / "白岩村.xlsx", header, [["522634102207", "欧阳明远", 1, "欧阳明远", HEAD1, "户主", "男",
                                                     *REQUIRED_VALUES]])
    report = importer.import_table(store, path)
    assert report.created == 1 and not any("还没有村" in n for n in report.notes)
