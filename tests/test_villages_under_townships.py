"""A county whose division table stops at townships (as the shared division data of all China does:
`shared/data/divisions/`) has no villages yet. A household's village code must then at least lie
under one of its townships (its first 9 digits); before, any code was taken, so a typing slip put a
household in a village no register or township book would ever list."""

from __future__ import annotations

import pytest

from app.services import households
from app.services.households import InputError
from tests.factories import household


def townships_only(store) -> None:
    store.set_divisions([("522634", "雷山县", "county", None), ("522634101", "西江镇", "township", "522634"),
                         ("522634102", "永乐镇", "township", "522634")])


def test_a_village_under_a_known_township_is_taken_and_one_elsewhere_is_refused(make_store):
    store = make_store(role="county")
    townships_only(store)
    saved = households.save(store, household(village_code="522634102207"))  # 永乐镇, a village not listed yet
    assert store.get(saved.household_id).village_code == "522634102207"
    before = store.count("household")
    for wrong in ("522634103201", "110101001001"):  # a township this county does not have; another province
        with pytest.raises(InputError) as refused:
            households.save(store, household(village_code=wrong, seq=7))
        message = str(refused.value)
        assert wrong in message and wrong[:9] in message and "不在本库的任何乡(镇)之下" in message
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
