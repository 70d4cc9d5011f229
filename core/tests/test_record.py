"""ember.common.record: the value records that replaced NamedTuples on the warm path."""

import pytest

from ember.cache.key import CacheKey
from ember.common.record import Record
from ember.contract.plugin_manager import PluginInfo


def test_a_record_compares_hashes_and_prints_by_its_fields_in_order():
    info = PluginInfo("cpu", "ember-cpu", "0.1.0")
    assert info == PluginInfo("cpu", "ember-cpu", "0.1.0", ())
    assert info != PluginInfo("cpu", "ember-cpu", "0.2.0")
    assert hash(info) == hash(PluginInfo("cpu", "ember-cpu", "0.1.0"))
    assert len({info, PluginInfo("cpu", "ember-cpu", "0.1.0")}) == 1
    assert repr(info) == ("PluginInfo(name='cpu', distribution='ember-cpu', version='0.1.0', "
                          "notes=())")
    assert list(info._asdict()) == ["name", "distribution", "version", "notes"]


def test_replace_copies_with_changes_and_leaves_the_original():
    key = CacheKey({"model": "a"}, "d1")
    changed = key._replace(digest="d2")
    assert (changed.parts, changed.digest) == ({"model": "a"}, "d2")
    assert key.digest == "d1"


def test_a_record_equals_no_other_type_not_even_a_tuple_of_its_values():
    key = CacheKey({}, "d")
    assert key != ({}, "d")
    assert PluginInfo("d") != CacheKey({}, "d")


def test_a_field_that_cannot_be_hashed_makes_the_hash_fail_as_a_tuples_would():
    with pytest.raises(TypeError):
        hash(CacheKey({"unhashable": []}, "d"))


def test_the_records_fields_are_its_slots():
    for record in (CacheKey, PluginInfo):
        assert issubclass(record, Record)
        assert record.__slots__ == record._fields
