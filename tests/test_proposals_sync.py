"""识别与退出 across real databases: a village laptop, a township office and the county, carried by
real signed, encrypted bundles (`jiandang sync export/import`), ending with the same status everywhere;
a stage forged on a village laptop is refused at the county."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.cli.main import main
from app.services import demo, households, proposals
from app.store import Store
from tests.conftest import PASSPHRASE
from tests import sync_helpers
from tests.factories import VILLAGE, household

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)

TODAY = dt.date.today()


def ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)
    return monkeypatch


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def opened(path) -> Store:
    store = Store.open(path)
    store.unlock(store.operators()[0], PASSPHRASE)
    return store


class Sites:
    """Three real databases and a USB folder per trip."""

    def __init__(self, tmp_path, capsys, env):
        self.tmp, self.capsys, self.trips = tmp_path, capsys, 0
        env.chdir(tmp_path)  # `init` of a county on PostgreSQL writes its recovery key into the current folder
        self.county = sync_helpers.county_location(tmp_path, "county.db")  # a file, or a PostgreSQL database
        self.village = tmp_path / "village.db"
        self.township = tmp_path / "township.db"
        assert cli(capsys, "init", self.county, "--role", "county", "--site-name", "雷山县扶贫办")[0] == 0
        with opened(self.county) as c:
            demo.install_reference_data(c)
            c.set_poverty_line(2025, 4000, "县级设定")
        for path, role, name, villages in (
            (self.village, "village", "龙井村工作队", VILLAGE),
            (self.township, "township", "西江镇扶贫站", "522634101201,522634101202,522634101203"),
        ):
            package = tmp_path / f"{role}.enrollment"
            code, out, err = cli(capsys, "enroll", self.county, "--site-name", name, "--role", role,
                                 "--villages", villages, "--out", package)
            assert code == 0, err
            enrollment_code = next(line.split(":", 1)[1] for line in out.splitlines() if line.startswith("登记码"))
            env.setenv("JIANDANG_ENROLLMENT_CODE", enrollment_code.strip())
            code, out, err = cli(capsys, "init", path, "--enrollment", package)
            assert code == 0, err

    def upstream(self, site) -> None:
        """A site's changes to the county on a USB stick."""
        self.trips += 1
        usb = self.tmp / f"usb{self.trips}"
        usb.mkdir()
        code, out, err = cli(self.capsys, "sync", "export", site, "--to", usb)
        assert code == 0, err
        code, out, err = cli(self.capsys, "sync", "import", self.county, usb)
        assert code == 0, out + err

    def downstream(self, site) -> None:
        """The county's decisions and the other sites' changes back to a site."""
        self.trips += 1
        usb = self.tmp / f"usb{self.trips}"
        usb.mkdir()
        code, out, err = cli(self.capsys, "sync", "export", self.county, "--to", usb)
        assert code == 0, err
        code, out, err = cli(self.capsys, "sync", "import", site, usb)
        assert code == 0, out + err


@pytest.fixture
def sites(tmp_path, env, capsys):
    return Sites(tmp_path, capsys, env)


def walk(sites: Sites, household_id: str, kind: str, **propose_kw) -> str:
    """One proposal from nomination on the laptop to 公告 at the county, through bundles."""
    with opened(sites.village) as v:
        p = proposals.propose(v, household_id, kind, reasons=f"{kind} 理由", date=ago(40), **propose_kw)
        proposals.advance(v, p["id"], "review", "pass", date=ago(30), meeting_date=ago(30), attendance=40,
                          votes_for=36, household_signed=True if kind == "exit" else None)
        proposals.advance(v, p["id"], "notice", "pass", notice_start=ago(29), notice_end=ago(20), date=ago(19))
    sites.upstream(sites.village)
    sites.downstream(sites.township)
    with opened(sites.township) as t:
        assert proposals.waiting_for(proposals.get(t, p["id"])) == "township"
        proposals.advance(t, p["id"], "township", "pass", by="乡扶贫站 李四")
        with pytest.raises(proposals.ProcedureError, match="“县级审定”只能由县级数据库办理,本数据库是乡级"):
            proposals.advance(t, p["id"], "county", "pass")
    sites.upstream(sites.township)
    with opened(sites.county) as c:
        with pytest.raises(proposals.ProcedureError, match="只能由村级或乡级数据库办理"):
            proposals.propose(c, household_id, "natural", reasons="x")
        proposals.advance(c, p["id"], "county", "pass")
        proposals.advance(c, p["id"], "announce", "pass")
    sites.downstream(sites.township)
    sites.downstream(sites.village)
    return p["id"]


def states(sites: Sites, household_id: str, proposal_id: str):
    out = []
    for path in (sites.village, sites.township, sites.county):
        with opened(path) as s:
            out.append((households.document(s, household_id)["status"], proposals.get(s, proposal_id)["stage"]))
    return out


def test_entry_then_exit_across_village_township_and_county_through_bundles(sites, capsys):
    with opened(sites.village) as v:
        assert v.poverty_line(2025) == 4000  # reference data came with the enrollment package
        hid = households.save(v, household(dilapidated="0")).household_id
    sites.upstream(sites.village)
    with opened(sites.county) as c:
        c.set_poverty_line(2025, 4200, "县级调整")
    sites.downstream(sites.village)  # the county's new line reaches the laptop
    with opened(sites.village) as v:
        assert v.poverty_line(2025) == 4200
    entry = walk(sites, hid, "entry")
    assert states(sites, hid, entry) == [("1", "announce")] * 3
    exit_ = walk(sites, hid, "exit", food_secure=True, clothing_secure=True)
    assert states(sites, hid, exit_) == [("2", "announce")] * 3
    with opened(sites.county) as c:  # the laptop's criteria: stored income 9000 / 2 against the county's line
        p = proposals.get(c, exit_)
        assert (p["assessed_per_capita"], p["assessed_line"], p.get("assessed_failures")) == (4500, 4200, None)
        assert p["township_by"] == "乡扶贫站 李四" and p["county_site"] == "雷山县扶贫办"
    with opened(sites.village) as v:
        history = proposals.status_history(v, hid)
        assert [(e.old, e.new) for e in history] == [(None, "1"), ("1", "2")]
        assert history[-1].proposal_id == exit_
        assert households.document(v, hid)["exit_year"] == TODAY.year
    code, out, err = cli(capsys, "proposals", sites.village, "--household", hid, "--json")
    data = json.loads(out)
    assert data["status"] == "2" and [p["state"] for p in data["proposals"]] == ["已公告生效", "已公告生效"]


def forged_import(sites, capsys, tamper) -> tuple[int, str]:
    """Tamper with a laptop database around the services, export its bundle, import it at the county."""
    with opened(sites.village) as v:
        hid = households.save(v, household(dilapidated="0")).household_id
        p = proposals.propose(v, hid, "entry", reasons="新识别", date=ago(40))
        tamper(v, hid, p["id"])
    usb = sites.tmp / f"forged{sites.trips}"
    sites.trips += 1
    usb.mkdir()
    assert cli(capsys, "sync", "export", sites.village, "--to", usb)[0] == 0
    with opened(sites.county) as c:
        before = (c.change_count(), c.count("household"), c.count("proposal"))
    code, out, err = cli(capsys, "sync", "import", sites.county, usb)
    with opened(sites.county) as c:
        assert (c.change_count(), c.count("household"), c.count("proposal")) == before  # nothing taken
    return code, out + err


def test_a_county_decision_forged_on_a_village_laptop_is_refused_at_the_county(sites, capsys):
    def tamper(v, hid, pid):  # a tampered laptop writing the county's decision itself
        v.put("proposal", {"stage": "county", "county_outcome": "pass", "county_date": ago(1)}, record_id=pid)

    code, text = forged_import(sites, capsys, tamper)
    assert code == 1 and "整包拒收" in text
    assert "“县级审定”只能由县级数据库办理,这项更改来自村级站点" in text


def test_a_status_written_on_a_village_laptop_is_refused_at_the_county(sites, capsys):
    def tamper(v, hid, pid):
        v.put("household", {"status": "2"}, record_id=hid)

    code, text = forged_import(sites, capsys, tamper)
    assert code == 1 and "脱贫状态只能通过识别、退出等程序改变" in text and "村级站点不能直接修改" in text
