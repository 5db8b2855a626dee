"""Messages name a household one way everywhere (app.core.validation.household_label): conflicts,
proposals, sync warnings and duplicate-ID findings read alike."""

from __future__ import annotations

from app.core.validation import household_label
from app.services import conflicts, households, proposals
from app.sync import exchange
from tests import factories


def test_one_household_is_named_alike_in_every_message(store):
    hid = households.save(store, factories.household()).household_id
    doc = households.document(store, hid)
    expected = f"户主“欧阳明远”(户编号 {doc['household_number']})"
    assert household_label(doc) == expected
    assert conflicts.record_title(store, hid) == expected
    assert proposals.household_title(doc) == expected
    assert exchange._household_label(store, hid) == expected
    member = doc["members"][0]
    assert conflicts.record_title(store, member["id"]) == f"{member['name']},{expected}"


def test_a_household_not_yet_filled_in_is_named_in_words():
    assert household_label({}) == "户主“未填”(户编号 未编号)"
    assert household_label(None) == "户主“未填”(户编号 未编号)"
