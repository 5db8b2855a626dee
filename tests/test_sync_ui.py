"""Sync dialog and county screen: work runs off the GUI thread and the per-file report and
conflict review show what happened."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

from app.services import households  # noqa: E402
from app.sync import exchange, merge  # noqa: E402
from app.ui.county_import import CountyImportScreen  # noqa: E402
from app.ui.sync_dialog import SyncDialog  # noqa: E402
from tests import factories  # noqa: E402
from tests.sync_helpers import make_county, make_device  # noqa: E402


def _two_laptops_editing_one_phone(tmp_path):
    """A county and laptops 甲队 and 乙队 that both hold a household and have each changed its phone
    since (not yet exported): the county's import of both makes a conflict."""
    usb = tmp_path / "usb"
    usb.mkdir()
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    hid = households.save(a, factories.household()).household_id
    exchange.export_to(a, usb)
    exchange.import_paths(county, [usb])
    exchange.export_to(county, usb)
    exchange.import_paths(b, [usb])
    a.put("household", {"phone": "13800000001"}, record_id=hid)
    b.put("household", {"phone": "13900000002"}, record_id=hid)
    return usb, county, a, b, hid


def _conflicts_command(path, monkeypatch, capsys) -> str:
    """What `jiandang conflicts PATH` prints (the database closed by the test beforehand)."""
    from app.cli.main import main
    from tests.sync_helpers import PASSPHRASE

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    capsys.readouterr()
    assert main(["conflicts", str(path)]) == 0
    return capsys.readouterr().out


def imported_in_county_window(qtbot, county, folder) -> tuple[CountyImportScreen, dict[str, str]]:
    """The county window's 导入 of a folder, as a staff member clicks it, waited for: the window and
    each file's status as its table shows it (file -> 已接收 / 已拒收 / …)."""
    screen = CountyImportScreen(county)
    qtbot.addWidget(screen)
    screen.panel.folder.setText(str(folder))
    screen.panel.import_()
    qtbot.waitUntil(lambda: not screen.panel.busy, timeout=20000)
    table = screen.panel.table
    return screen, {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}


def test_laptop_export_and_county_import_with_report_and_conflict_review(qtbot, tmp_path):
    usb, county, a, b, hid = _two_laptops_editing_one_phone(tmp_path)

    for laptop in (a, b):
        dialog = SyncDialog(laptop)
        qtbot.addWidget(dialog)
        dialog.panel.folder.setText(str(usb))
        dialog.panel.export()
        assert dialog.panel.busy  # running on the thread pool
        qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=20000)
        assert dialog.panel.table.rowCount() == 1 and dialog.panel.table.item(0, 1).text() == "已导出"
    truncated = usb / "x-up-000001.jdb"
    truncated.write_bytes(next(usb.glob(f"{a.site_id}-up-000002.jdb")).read_bytes()[:100])

    screen, statuses = imported_in_county_window(qtbot, county, usb)
    assert statuses["x-up-000001.jdb"] == "已拒收"
    assert statuses[f"{a.site_id}-up-000002.jdb"] == "已接收"
    assert statuses[f"{b.site_id}-up-000001.jdb"] == "已接收"
    assert "拒收 1" in screen.panel.summary.text()
    assert len(screen.conflicts.items) == 1
    loser = screen.conflicts.items[0].loser_value
    screen.conflicts.table.selectRow(0)
    screen.conflicts.restore.click()
    assert county.get(hid).fields["phone"] == loser
    assert merge.conflicts(county) == [] and screen.conflicts.table.rowCount() == 0
    for s in (a, b, county):
        s.close()


def test_main_window_shows_what_a_sync_brought_and_the_sync_state(qtbot, tmp_path, monkeypatch):
    from app.ui.main_window import MainWindow

    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    usb = tmp_path / "usb"
    usb.mkdir()
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    doc = factories.household()
    hid = households.save(a, doc).household_id
    households.save(b, factories.household("诸葛长青", "上官玉梅", seq=7))
    exchange.export_to(a, usb)
    exchange.import_paths(county, [usb])
    exchange.export_to(county, usb)

    w = MainWindow(b)
    w.set_auto_lock_minutes(0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)
    assert w.sync_label.text() == "上次同步:从未同步"
    unsynced_before = int(w.unsynced_label.text().split(":")[1])
    assert unsynced_before > 0
    assert w.model.view_row_of(hid) == -1

    dialog = w.open_external("app.ui.sync_dialog", "SyncDialog")
    dialog.panel.folder.setText(str(usb))
    dialog.panel.export()  # 乙队's own changes go up ...
    qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=20000)
    exchange.import_paths(county, [usb])
    exchange.export_to(county, usb)  # ... and the county's answer acknowledges them
    dialog.panel.import_()
    qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=20000)
    dialog.close()
    qtbot.waitUntil(lambda: w.loaded and w.model.view_row_of(hid) >= 0, timeout=20000)
    qtbot.waitUntil(lambda: w.unsynced_label.text() == "未同步修改:0", timeout=20000)
    assert w.sync_label.text().startswith("上次同步:20")
    for s in (a, b, county):
        s.close()


def test_sync_now_button_syncs_through_the_service_and_says_when_it_is_unreachable(qtbot, tmp_path):
    from app.server.app import SyncServer

    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    hid = households.save(b, factories.household()).household_id
    name, data = exchange.export_upstream(b)
    exchange.import_bundle(county, data, name)
    server = SyncServer(county, "127.0.0.1", 0, access_log=False).start()
    try:
        households.save(a, factories.household("诸葛长青", "上官玉梅", seq=7))
        a.set_meta("county_name", "")  # enrolled before packages named the county: the service names it
        dialog = SyncDialog(a)
        assert f"登记于 县扶贫办({county.site_id})" in dialog.info.text()
        qtbot.addWidget(dialog)
        assert dialog.server.text() == ""  # not set at enrollment
        dialog.server.setText(server.url)
        steps = []
        dialog.panel.progress.valueChanged.connect(lambda v: steps.append(dialog.panel.summary.text()))
        qtbot.mouseClick(dialog.sync_button, Qt.LeftButton)
        assert dialog.panel.busy and not dialog.sync_button.isEnabled() and not dialog.panel.export_button.isEnabled()
        qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=20000)
        rows = [(dialog.panel.table.item(r, 0).text(), dialog.panel.table.item(r, 1).text())
                for r in range(dialog.panel.table.rowCount())]
        assert [status for _, status in rows] == ["已接收", "已接收"], dialog.panel.summary.text()
        assert rows[0][0].startswith(f"{a.site_id}-up-") and rows[1][0].startswith(f"{a.site_id}-down-")
        assert dialog.panel.summary.text().startswith("已与县同步服务同步")
        assert any("上传同步包" in text for text in steps)
        assert households.document(a, hid) == households.document(county, hid)  # B's household arrived
        assert a.meta("sync_server_url") == server.url and dialog.sync_button.isEnabled()
        assert "尚未确认的本机更改:0 条" in dialog.info.text()  # the county acknowledged them
        assert f"登记于 雷山县扶贫办({county.site_id})" in dialog.info.text()
    finally:
        server.stop()
    # the service is gone: a clear message, and the USB buttons still work
    dialog.retries, dialog.backoff = 1, 0.01
    dialog.sync_now()
    qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=20000)
    message = dialog.panel.summary.text()
    assert "无法连接县同步服务" in message and "U盘" in message
    usb = tmp_path / "usb"
    usb.mkdir()
    dialog.panel.folder.setText(str(usb))
    dialog.panel.export()
    qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=20000)
    assert dialog.panel.table.item(0, 1).text() == "已导出" and len(list(usb.glob("*.jdb"))) == 1
    for s in (a, b, county):
        s.close()


def test_county_screen_names_sites_kinds_and_roles_in_chinese(qtbot, tmp_path):
    from tests.sync_helpers import VILLAGE, down, up

    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    make_device(tmp_path, county, "示范乡", villages=(VILLAGE[:9],), role="township").close()
    hid = households.save(a, factories.household()).household_id
    up(a, county), down(county, b)
    a.put("household", {"phone": "13800000001"}, record_id=hid)
    b.put("household", {"phone": "13900000002"}, record_id=hid)
    up(a, county), up(b, county)
    screen = CountyImportScreen(county)
    qtbot.addWidget(screen)
    table = screen.conflicts.table
    assert table.rowCount() == 1
    cells = [table.item(0, col).text() for col in range(table.columnCount())]
    assert cells[0].startswith("贫困户 ") and cells[1] == "联系电话"
    assert "甲队" in cells[4] and "乙队" in cells[4]
    roles = {screen.devices.item(r, 1).text(): screen.devices.item(r, 2).text() for r in range(screen.devices.rowCount())}
    assert roles == {"甲队": "村级", "乙队": "村级", "示范乡": "乡级"}
    for s in (a, b, county):
        s.close()


def test_conflict_list_names_the_household_by_number_and_head_and_a_member_by_name(qtbot, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from tests.sync_helpers import down, up

    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    hid = households.save(a, factories.household("邵成德", "吴秀英")).household_id
    up(a, county), down(county, b)
    number = county.get(hid).fields["household_number"]
    spouse = next(m for m in a.records("member", parent_id=hid) if m.fields["name"] == "吴秀英")
    a.put("household", {"phone": "13800000001"}, record_id=hid)
    b.put("household", {"phone": "13900000002"}, record_id=hid)
    a.put("member", {"work_months": 3}, record_id=spouse.id)
    b.put("member", {"work_months": 9}, record_id=spouse.id)
    up(a, county), up(b, county)
    screen = CountyImportScreen(county)
    qtbot.addWidget(screen)
    table = screen.conflicts.table
    names = {table.item(r, 1).text(): table.item(r, 0).text() for r in range(table.rowCount())}
    assert names["联系电话"] == f"贫困户 户主“邵成德”(户编号 {number})"
    assert [v for k, v in names.items() if k != "联系电话"] == [f"家庭成员 吴秀英,户主“邵成德”(户编号 {number})"]
    screen.tabs.setCurrentWidget(screen.conflicts)
    screen.grab().save(str(tmp_path / "conflicts.png"))
    path = Path(county.path)
    for s in (a, b, county):
        s.close()
    # `jiandang conflicts` names them in the same words
    records = [line.split("\t")[1] for line in _conflicts_command(path, monkeypatch, capsys).splitlines()]
    assert sorted(records) == sorted(names.values())


def _local(iso: str) -> str:
    import datetime as dt

    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).astimezone() \
        .strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def shanghai_time(monkeypatch):
    """Stored times are UTC; the window shows local time (UTC+8 here, so the two differ)."""
    import time

    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_sync_texts_show_local_times_and_sites_by_name(qtbot, tmp_path, monkeypatch, capsys, shanghai_time):
    from app.cli.main import main
    from app.sync import identity
    from tests.sync_helpers import PASSPHRASE

    usb = tmp_path / "usb"
    usb.mkdir()
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    gone = make_device(tmp_path, county, "乙队")
    gone.close()
    identity.revoke(county, gone.site_id)
    households.save(a, factories.household())
    exchange.export_to(a, usb)

    screen, _ = imported_in_county_window(qtbot, county, usb)  # the county: devices by their certificates
    assert screen.panel.table.item(0, 2).text().startswith(f"来自 甲队({a.site_id}):更改 ")
    states = {screen.devices.item(r, 1).text(): screen.devices.item(r, 4).text() for r in range(screen.devices.rowCount())}
    cert = {c["site_name"]: c for c in identity.certificates(county)}
    assert states == {"甲队": f"有效至 {_local(cert['甲队']['not_after'])}",
                      "乙队": f"已吊销 {_local(cert['乙队']['revoked'])}"}
    screen.tabs.setCurrentWidget(screen.devices)
    screen.grab().save(str(tmp_path / "devices.png"))
    exchange.export_to(county, usb)

    dialog = SyncDialog(a)  # the laptop: itself and its county by name
    qtbot.addWidget(dialog)
    assert "最近的县级包有效至:尚未收到" in dialog.info.text()
    dialog.panel.folder.setText(str(usb))
    dialog.panel.import_()
    qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=20000)
    info = dialog.info.text()
    assert info.startswith(f"本机:甲队({a.site_id}),登记于 雷山县扶贫办({county.site_id})。"), info
    assert info.endswith(f"最近的县级包有效至:{_local(a.meta('sync_down_expires'))}"), info
    assert "T" not in info.split("有效至:")[1] and "Z" not in info.split("有效至:")[1]
    assert dialog.panel.table.item(0, 2).text().startswith(f"来自 雷山县扶贫办({county.site_id}):")
    dialog.grab().save(str(tmp_path / "sync.png"))
    dialog.close()

    # the command line names them the same way
    households.save(a, factories.household("诸葛长青", "上官玉梅", seq=7))
    exchange.export_to(a, usb)
    paths = (a.path, county.path)
    for s in (a, county):
        s.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    capsys.readouterr()
    assert main(["sync", "import", str(paths[1]), str(usb)]) == 0
    assert f"来自 甲队({a.site_id}) 第 2 号包" in capsys.readouterr().out
    assert main(["sync", "export", str(paths[1]), "--to", str(usb)]) == 0
    assert main(["sync", "import", str(paths[0]), str(usb)]) == 0
    assert f"来自 雷山县扶贫办({county.site_id}) 第 2 号包" in capsys.readouterr().out


def test_files_a_folder_import_left_out_are_shown_as_skipped_not_counted_as_bundles(qtbot, tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    usb = tmp_path / "usb"
    (usb / "stickA").mkdir(parents=True)
    exchange.export_to(laptop, usb / "stickA")  # the laptop's own upload: not for importing here
    dialog = SyncDialog(laptop)
    qtbot.addWidget(dialog)
    dialog.panel.folder.setText(str(usb))
    dialog.panel.import_()
    qtbot.waitUntil(lambda: not dialog.panel.busy, timeout=20000)
    assert dialog.panel.table.rowCount() == 1
    assert dialog.panel.table.item(0, 1).text() == "已跳过"
    assert "本机导出的上传包,应带到县扶贫办导入" in dialog.panel.table.item(0, 2).text()
    assert dialog.panel.summary.text() == "此文件夹中没有给本数据库的同步包,已跳过的文件见上表"
    for s in (laptop, county):
        s.close()


def test_conflicting_bank_accounts_are_partly_hidden_in_the_window_and_the_command(qtbot, tmp_path, monkeypatch, capsys):
    """银行账号 is `masked = true` in forms/: the 冲突审核 list, `jiandang conflicts` and its --json
    show it as the editor's 修改记录 does (first 6 and last 4 digits), never whole."""
    import json
    from pathlib import Path

    from app.cli.main import main
    from app.core.dictionary import default
    from tests.sync_helpers import down, up

    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    hid = households.save(a, factories.household("邵成德", "吴秀英")).household_id
    up(a, county), down(county, b)
    first, second = "6228480012345670018", "6217000098765432109"
    a.put("household", {"bank_account": first}, record_id=hid)
    b.put("household", {"bank_account": second}, record_id=hid)
    up(a, county), up(b, county)
    shown = {default().display_masked("household", "bank_account", v) for v in (first, second)}
    assert shown == {"622848*********0018", "621700*********2109"}
    screen = CountyImportScreen(county)
    qtbot.addWidget(screen)
    table = screen.conflicts.table
    rows = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]
    assert [r[1] for r in rows] == ["银行账号"]
    assert {rows[0][2], rows[0][3]} == shown
    texts = "\n".join("\n".join(r) for r in rows)
    assert first not in texts and second not in texts
    path = Path(county.path)
    for s in (a, b, county):
        s.close()
    out = _conflicts_command(path, monkeypatch, capsys)
    assert first not in out and second not in out
    assert all(v in out for v in shown), out
    assert main(["conflicts", str(path), "--json"]) == 0
    item, = json.loads(capsys.readouterr().out)
    assert {item["winner_value"], item["loser_value"]} == shown and item["current_value"] in shown


def test_a_conflict_another_window_resolved_meanwhile_is_said_so_in_the_window_s_words(qtbot, tmp_path, monkeypatch):
    """Two county staff review conflicts: the second to press a button learns it was resolved
    already (no command-line advice) and the list no longer shows it."""
    from PySide6.QtWidgets import QMessageBox

    usb, county, a, b, hid = _two_laptops_editing_one_phone(tmp_path)
    for laptop in (a, b):
        exchange.export_to(laptop, usb)
    exchange.import_paths(county, [usb])
    screen = CountyImportScreen(county)
    qtbot.addWidget(screen)
    assert len(screen.conflicts.items) == 1
    merge.resolve(county, screen.conflicts.items[0].id, "winner")  # the other staff member's window
    said = []
    monkeypatch.setattr(QMessageBox, "information", lambda _w, title, text: said.append((title, text)))
    monkeypatch.setattr(QMessageBox, "warning", lambda _w, title, text: said.append((title, text)))
    screen.conflicts.table.selectRow(0)
    screen.conflicts.restore.click()
    [(title, text)] = said
    assert title == "冲突已处理" and "已经处理过(已保留现值)" in text and "jiandang" not in text
    assert screen.conflicts.table.rowCount() == 0
    for s in (a, b, county):
        s.close()
