"""Field readiness: settings and logs in the per-user folders, no personal data in logs, and the
self-test command (the packaged build itself is checked by .ci/package-smoke)."""

import json
import logging
import re
from pathlib import Path

import pytest

from app import settings
from app.cli.main import main
from app.store import Store

ROOT = Path(__file__).resolve().parent.parent
PASS = "jiandang-demo"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    settings.close_logging()


def test_folders_follow_platformdirs_unless_jiandang_home(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv("JIANDANG_HOME", raising=False)
    assert settings.config_dir() == Path(platformdirs.user_config_dir("jiandang", appauthor=False))
    assert settings.log_dir() == Path(platformdirs.user_log_dir("jiandang", appauthor=False))
    assert settings.backup_folder(settings.Settings()) == Path(platformdirs.user_data_dir("jiandang", appauthor=False)) / "backups"
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path))
    assert settings.settings_path() == tmp_path / "config" / "settings.json"
    assert settings.log_dir() == tmp_path / "logs"


def test_settings_round_trip_and_survive_a_damaged_file(home):
    conf = settings.Settings(backup_folder="E:\\备份", backup_keep=5, auto_backup=False)
    path = settings.save(conf)
    assert settings.load() == conf
    assert not list(path.parent.glob("*.tmp"))
    path.write_text("{not json", encoding="utf-8")
    assert settings.load() == settings.Settings()  # defaults, no crash
    path.write_text(json.dumps({"backup_keep": "abc", "unknown": 1}), encoding="utf-8")
    assert settings.load() == settings.Settings()
    path.write_text(json.dumps({"backup_keep": 3, "from_a_newer_version": True}), encoding="utf-8")
    assert settings.load().backup_keep == 3


def test_redaction_masks_id_numbers_and_phones():
    text = settings.redact("成员 522634199001011236 电话 13912345678 户 5226341012010001 记录 3")
    assert "522634199001011236" not in text and "13912345678" not in text
    assert "522634************" in text and "139********" in text
    assert "5226341012010001" in text  # a 16-digit household number is not an ID number or phone


def _demo_secrets(db: Path) -> list[str]:
    with Store.open(db) as s:
        s.unlock(s.operators()[0], PASS)
        values = []
        for m in s.records("member"):
            values += [m.fields.get("name"), m.fields.get("id_number"), m.fields.get("phone")]
        for h in s.records("household"):
            values += [h.fields.get("head_name"), h.fields.get("phone")]
        first = next(s.records("household")).id
    return [v for v in values if v], first


def test_logs_of_a_demo_session_contain_no_personal_data(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASS)
    db = tmp_path / "demo.db"
    log_file = settings.setup_logging("DEBUG")
    assert main(["demo", str(db), "--per-village", "2"]) == 0
    secrets, household = _demo_secrets(db)
    assert len(secrets) > 30
    assert main(["list", str(db)]) == 0
    main(["validate", str(db)])
    assert main(["print", "card", str(db), "--household", household, "--out", str(tmp_path / "card.pdf")]) == 0
    assert main(["backup", str(db), "--to", str(tmp_path / "usb")]) == 0
    assert main(["check", str(db)]) == 0
    # a careless log line with an ID number and a phone is masked on its way to the file
    id_number = next(v for v in secrets if re.fullmatch(r"\d{17}[\dX]", v))
    logging.getLogger("app.example").warning("saved member %s phone %s", id_number, "13912345678")
    try:
        raise ValueError(f"bad id {id_number}")
    except ValueError:
        logging.getLogger("app.example").exception("failed")
    capsys.readouterr()
    for handler in logging.getLogger().handlers:
        handler.flush()
    files = [p for p in log_file.parent.rglob("*") if p.is_file()]
    text = "".join(p.read_text(encoding="utf-8") for p in files)
    assert "backup written" in text and "integrity check" in text  # the session did log
    leaked = [v for v in set(secrets) if v in text]
    assert leaked == [], f"personal data in the log: {leaked[:5]}"
    assert "13912345678" not in text


def test_selftest_passes_every_step(home, capsys):
    assert main(["selftest"]) == 0
    out = capsys.readouterr().out
    for step in ("程序资源", "创建加密数据库", "保存一户", "添加照片", "校验", "加密检查", "打印户有卡", "导出数据包并由县级导入",
                 "备份与完整性检查"):
        assert f"通过  {step}" in out
    assert "自检通过:9 项" in out


def test_selftest_fails_when_the_county_refuses_the_bundle(home, monkeypatch, capsys):
    from app.sync import exchange

    real = exchange.import_paths

    def refuse(store, paths, progress=None):
        return [exchange.Report(r.name, "refused", "测试:拒收") for r in real(store, paths, progress)]

    monkeypatch.setattr(exchange, "import_paths", refuse)
    assert main(["selftest"]) == 1
    out = capsys.readouterr().out
    assert "失败  导出数据包并由县级导入" in out and "拒收" in out


def test_selftest_fails_when_the_font_is_missing(home, monkeypatch, tmp_path, capsys):
    from app import paths

    monkeypatch.setattr(paths, "font_path", lambda: tmp_path / "missing.ttf")
    assert main(["selftest"]) == 1
    assert "失败  程序资源" in capsys.readouterr().out



def test_the_windows_workflow_builds_with_build_spec_and_runs_the_packaged_selftest():
    """The Windows runner builds the one-folder program and runs its self-test (docs/install.md)."""
    flow = (ROOT / ".github" / "workflows" / "windows.yml").read_text(encoding="utf-8")
    package = flow.split("\n  package:\n", 1)[1].split("\n  tests:\n", 1)[0]
    assert "runs-on: windows-latest" in package
    assert "pyinstaller --noconfirm --clean build.spec" in package
    assert "dist\\jiandang\\jiandang-cli.exe selftest" in package
    spec = (ROOT / "build.spec").read_text(encoding="utf-8")
    assert 'resources" / "icons" / "jiandang.ico"' in spec and "VSVersionInfo(" in spec
    assert 'StringStruct("ProductName", PRODUCT)' in spec and 'PRODUCT = "建档' in spec
