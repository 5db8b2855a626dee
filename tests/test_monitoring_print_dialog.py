"""The window's print dialog makes the 防返贫监测 notices (监测识别 and 风险消除) off the GUI thread, with
the same options as `jiandang print notice --kind monitor|eliminate`, and the same PDF content."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QDate  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from app.cli.main import main  # noqa: E402
from app.store import Store  # noqa: E402
from app.ui.print_dialog import PrintDialog  # noqa: E402
from tests.conftest import PASSPHRASE  # noqa: E402
from tests.factories import VILLAGE  # noqa: E402
from tests.test_monitoring_print import TODAY, db  # noqa: E402, F401 - the fixture: one proposal of each kind


def pages_text(pdf: bytes) -> list[str]:
    return [re.sub(r"\s+", "", page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]


def cli_pdf(path, tmp_path, kind: str, *extra: str) -> bytes:
    out = tmp_path / f"cli-{kind}.pdf"
    assert main(["print", "notice", str(path), "--village", VILLAGE, "--kind", kind, "--out", str(out), *extra]) == 0
    return out.read_bytes()


def dialog_pdf(qtbot, path, key: str, setup=None) -> tuple[bytes, str]:
    """The PDF the dialog generates and the file name it suggests."""
    store = Store.open(path)
    store.unlock(store.operators()[0], PASSPHRASE)
    dialog = PrintDialog(store, village_code=VILLAGE)
    qtbot.addWidget(dialog)
    dialog.select(key)
    assert dialog.current_document() == key and dialog.notice_box.isVisibleTo(dialog)
    if setup:
        setup(dialog)
    dialog.generate()
    assert dialog.busy  # on a worker
    assert dialog.wait_until_done()
    pdf, name = dialog.pdf, dialog.suggested_name()
    assert pdf, dialog.status.text()
    store.close()
    return pdf, name


@pytest.mark.parametrize("key, kind, title", [("notice_monitor", "monitor", "拟纳入防返贫监测对象公示"),
                                              ("notice_eliminate", "eliminate", "监测对象拟风险消除公示")])
def test_the_dialog_prints_the_monitoring_notice_the_command_prints(qtbot, db, tmp_path, key, kind, title):
    path, ids = db
    # the period planned on the proposals (the dialog's default, the command's without --start)
    from_cli = pages_text(cli_pdf(path, tmp_path, kind))
    pdf, name = dialog_pdf(qtbot, path, key)
    assert pages_text(pdf) == from_cli
    assert title in from_cli[0] and not any(i in "".join(from_cli) for i in ids)
    assert name.startswith("公示-监测识别-" if kind == "monitor" else "公示-风险消除-")
    (tmp_path / f"{kind}.pdf").write_bytes(pdf)


@pytest.mark.parametrize("key, kind, days", [("notice_monitor", "monitor", 5), ("notice_eliminate", "eliminate", 7)])
def test_dates_place_contact_and_phone_typed_in_the_dialog_print_as_the_command_options(qtbot, db, tmp_path, key, kind,
                                                                                       days):
    """Without the planned period the notice runs from the start date for the shortest period its kind
    allows (监测识别 5 days, 风险消除 7: REFERENCE.md), in the dialog as in the command."""
    path, _ = db
    start = TODAY + dt.timedelta(days=1)
    from_cli = pages_text(cli_pdf(path, tmp_path, kind, "--start", start.isoformat(), "--place", "三组晒场公示栏",
                                  "--contact", "村委会 李四", "--phone", "0855-1234567"))

    def typed(dialog):
        dialog.use_proposal_period.setChecked(False)
        dialog.start.setDate(QDate(start.year, start.month, start.day))
        assert dialog.end.date().toPython() == start + dt.timedelta(days=days - 1)  # follows the start and kind
        dialog.place.setText("三组晒场公示栏")
        dialog.contact.setText("村委会 李四")
        dialog.phone.setText("0855-1234567")

    pdf, _ = dialog_pdf(qtbot, path, key, typed)
    assert pages_text(pdf) == from_cli
    assert f"(共{days}天)" in "".join(from_cli) and "0855-1234567" in "".join(from_cli)


def test_a_period_too_short_for_the_kind_is_refused_in_the_dialog_as_by_the_command(qtbot, db, tmp_path, capsys):
    path, _ = db
    end = TODAY + dt.timedelta(days=3)  # 4 days: one short of 监测识别's 5

    def short(dialog):
        dialog.use_proposal_period.setChecked(False)
        dialog.end.setDate(QDate(end.year, end.month, end.day))

    store = Store.open(path)
    store.unlock(store.operators()[0], PASSPHRASE)
    dialog = PrintDialog(store, village_code=VILLAGE)
    qtbot.addWidget(dialog)
    dialog.select("notice_monitor")
    short(dialog)
    dialog.generate()
    assert dialog.wait_until_done()
    store.close()
    assert dialog.pdf is None and "监测识别公示期至少 5 天" in dialog.status.text()
    assert main(["print", "notice", str(path), "--village", VILLAGE, "--kind", "monitor", "--start", TODAY.isoformat(),
                 "--end", end.isoformat(), "--out", str(tmp_path / "x.pdf")]) == 1
    assert "监测识别公示期至少 5 天" in capsys.readouterr().err
