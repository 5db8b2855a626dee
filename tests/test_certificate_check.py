"""The county's signature on the device certificates it holds: checked once per process
(`identity.check_certificate`'s cache), and, since issue 16's seventh pass, for every enrolled device when
the service starts (`identity.check_certificates`), so that a device's first upload after a restart does
not pay for it. A certificate row that does not hold (altered in the file) is never taken as checked:
its upload is refused as before. On a county file and on PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature

from app.server import app as server_app
from app.server.limits import Limits
from app.sync import identity
from tests.sync_helpers import FAR_VILLAGE, VILLAGE, make_county, make_device, up

COUNTY_BACKENDS = ("sqlite", "postgresql")


def _certificate(county, site_id: str) -> identity.Certificate:
    return identity.certificate_of(county, site_id)[0]


def test_service_start_checks_every_held_certificate_once(tmp_path, monkeypatch):
    county = make_county(tmp_path)
    devices = [make_device(tmp_path, county, f"工作队{i}") for i in range(3)]
    identity.revoke(county, devices[2].site_id)
    monkeypatch.setattr(identity, "_CHECKED", {})
    checked = []
    real = identity.Certificate.verify
    monkeypatch.setattr(identity.Certificate, "verify", lambda cert, key: (checked.append(cert.site_id), real(cert, key)))
    app = server_app.create_app(county, Limits(uploads_per_minute=0), spool_dir=Path(tempfile.mkdtemp()))
    app.state.service.close()
    assert sorted(checked) == sorted(d.site_id for d in devices[:2])  # the revoked device's is not checked
    checked.clear()
    for device in devices[:2]:  # an upload's check finds them checked: no signature verified again
        identity.check_certificate(county, _certificate(county, device.site_id))
    assert checked == []
    assert identity.check_certificates(county) == 2 and checked == []  # a second start checks nothing again
    # the devices' uploads are taken as before
    with devices[0].transaction():
        devices[0].put("household", {"head_name": "张三"}, village_code=VILLAGE)
    report = up(devices[0], county)
    assert report.status == "accepted" and report.applied == 1, report.message
    county.close()
    for device in devices:
        device.close()


def test_an_altered_certificate_row_is_not_taken_as_checked(tmp_path, monkeypatch):
    county = make_county(tmp_path)
    device = make_device(tmp_path, county, "工作队")
    monkeypatch.setattr(identity, "_CHECKED", {})
    text = county.conn.execute("SELECT certificate FROM certificates WHERE site_id = ?", (device.site_id,)).fetchone()[0]
    data = json.loads(text)
    data["body"]["villages"] = data["body"]["villages"] + [FAR_VILLAGE]  # a village the county never gave it
    with county.transaction():
        county.conn.execute("UPDATE certificates SET certificate = ? WHERE site_id = ?",
                            (json.dumps(data, sort_keys=True, ensure_ascii=False), device.site_id))
    assert identity.check_certificates(county) == 0
    with pytest.raises(InvalidSignature):
        identity.check_certificate(county, _certificate(county, device.site_id))
    county.close()
    device.close()
