"""The county service answers an upload with its report as JSON (protocol.report_to_dict): the same
values `dataclasses.asdict` gives, and a laptop reads back the report the county made."""

from __future__ import annotations

import dataclasses

import orjson

from app.server import protocol
from app.sync.exchange import Report


def _full_report() -> Report:
    return Report("第3号包.jdb", "accepted", "已接收", sender="d5f91d365ccdadb5", seq=3, changes=45, applied=44,
                  conflicts=1, duplicates=[("h1", "h2", ("m1", "m2")), ("h3", "h4")],
                  household_labels={"h1": "户主“邵成德”", "h2": "另一村的一户"}, warnings=["字典版本较旧"],
                  reference=["行政区划 2026.5"], seconds_crypto=0.001, seconds_total=0.002, attachments=2, more=True,
                  more_changes=True)


def test_the_answer_holds_what_asdict_gives():
    report = _full_report()
    expected = dataclasses.asdict(report)
    expected["duplicates"] = [["h1", "h2", ["m1", "m2"]], ["h3", "h4"]]
    got = protocol.report_to_dict(report)
    assert orjson.loads(orjson.dumps(got)) == orjson.loads(orjson.dumps(expected))
    assert set(got) == {f.name for f in dataclasses.fields(Report)}


def test_the_answer_is_a_copy_and_reads_back_as_the_report():
    report = _full_report()
    got = protocol.report_to_dict(report)
    got["warnings"].append("x")
    got["household_labels"]["h9"] = "x"
    got["reference"].clear()
    assert report.warnings == ["字典版本较旧"] and "h9" not in report.household_labels and report.reference
    assert protocol.report_from_dict(orjson.loads(orjson.dumps(protocol.report_to_dict(report)))) == report
