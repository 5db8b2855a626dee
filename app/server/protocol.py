"""What the county sync service and its clients agree on (docs/serve.md, "Wire protocol").

    GET  /api/v1/health      -> JSON: service, version, county site id and key fingerprint
    POST /api/v1/bundles     body = the bytes of one upstream bundle (.jdb), header X-Jiandang-Bundle-Name
                             -> JSON {"ok", "error", "message", "report", "line"}
    GET  /api/v1/challenge   -> JSON {"challenge": 64 hex characters, "expires_in": seconds}
    POST /api/v1/downstream  JSON {"site", "challenge", "signature"[, "after", "part_of"]} -> the site's
                             downstream bundle (bytes); with "after": the next part of the export

The upload is authenticated by the bundle's own Ed25519 signature (checked against the enrolled
device's certificate before anything is parsed, decrypted or stored). The downstream request is
authenticated by the device's enrolled Ed25519 key signing FETCH_CONTEXT + canonical JSON of
{challenge, county, site} (and after, part_of when it asks for the next part of an export), where
the challenge is a single-use random value the service handed out
less than CHALLENGE_SECONDS ago (no dependence on the laptop's clock).
"""

from __future__ import annotations

import re

from app.sync import wire
from app.sync.exchange import Report

API = "/api/v1"
HEALTH = API + "/health"
BUNDLES = API + "/bundles"
CHALLENGE = API + "/challenge"
DOWNSTREAM = API + "/downstream"
NAME_HEADER = "X-Jiandang-Bundle-Name"
SERVICE = "jiandang-sync"
FETCH_CONTEXT = b"jiandang fetch v1|"
CHALLENGE_SECONDS = 120
DEFAULT_PORT = 8765

_SAFE = re.compile(r"[^0-9A-Za-z._-]")


def fetch_message(county: str, site: str, challenge: str, after: int | None = None, part_of: int | None = None) -> bytes:
    """The bytes a device signs to fetch its downstream bundle; with `after` (and `part_of`) the next part
    of the export it is taking: the changes after county number `after` (exchange.export_downstream)."""
    fields = {"challenge": challenge, "county": county, "site": site}
    if after is not None:
        fields.update(after=int(after), part_of=int(part_of or 0))
    return FETCH_CONTEXT + wire.canonical(fields)


def safe_name(text: str | None, default: str = "上传的同步包") -> str:
    """A bundle name from a request header, reduced to file-name characters (it is echoed in reports
    and logs)."""
    name = _SAFE.sub("", text or "")[:80]
    return name or default


def report_to_dict(report: Report) -> dict:
    """The report as JSON values: what `dataclasses.asdict` gives, without its recursive deep copy (a
    tenth of a millisecond per upload at the county service): its fields hold text, numbers and
    flags, lists of text (warnings, reference) and one dict of text (household_labels)."""
    data = {name: getattr(report, name) for name in Report.__dataclass_fields__}
    data["warnings"], data["reference"] = list(report.warnings), list(report.reference)
    data["household_labels"] = dict(report.household_labels)
    data["duplicates"] = [list(d[:2]) + [list(d[2])] if len(d) > 2 else list(d) for d in report.duplicates]
    return data


def report_from_dict(data: dict) -> Report:
    fields = {k: data[k] for k in Report.__dataclass_fields__ if k in data}
    fields["duplicates"] = [tuple(d[:2]) + (tuple(d[2]),) if len(d) > 2 else tuple(d) for d in data.get("duplicates") or []]
    fields["warnings"] = list(data.get("warnings") or [])
    return Report(**fields)
