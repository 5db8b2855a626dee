"""Which role may make which change (the register's procedures: 识别, 退出, 成员增减).

Contract used by sync when it authorises every incoming change, and by the local save path:
`authorize_change(kind, new_fields, old_fields, role)` returns None when a site of `role`
("village" | "township" | "county") may make this change, or a Chinese sentence saying why not.

The procedure rules themselves (proposal stages and roles, household status only through an
effective proposal) are filled in with the register's-life work (issue 6).
"""

from __future__ import annotations


def authorize_change(kind: str, new_fields: dict, old_fields: dict, role: str) -> str | None:
    """None if allowed, else the reason for refusing (Chinese)."""
    return None
