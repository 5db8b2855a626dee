"""Where a database lives: a file path (SQLite, every laptop and small office) or a
`postgresql://` URL (a county database on a PostgreSQL server, app/store/postgres.py).
`location(text)` decides; a URL's password never appears in messages (`PgLocation.masked`)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^\s*(postgresql|postgres)://", re.I)


def is_url(text) -> bool:
    """Whether `text` names a PostgreSQL database (postgresql://… or postgres://…)."""
    return isinstance(text, PgLocation) or (isinstance(text, str) and bool(_URL.match(text)))


class PgLocation:
    """A PostgreSQL database named by URL. Behaves enough like a Path for messages: `str()` and
    `.name` are the URL with its password masked."""

    def __init__(self, url: str):
        self.url = url.strip()

    @property
    def masked(self) -> str:
        return mask(self.url)

    @property
    def name(self) -> str:
        return self.masked

    @property
    def database(self) -> str:
        try:
            return unquote(urlsplit(self.url).path.lstrip("/"))
        except ValueError:
            return ""

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"PgLocation({self.masked!r})"

    def __fspath__(self):  # a URL is not a file: code that would open it as one fails loudly
        raise TypeError(f"{self.masked} 是 PostgreSQL 数据库地址,不是文件")

    def __eq__(self, other) -> bool:
        return isinstance(other, PgLocation) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)


def mask(url: str) -> str:
    """The URL with its password (in the user part or a password= parameter) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def without_password(url: str) -> str:
    """The URL with no password at all (what the window remembers among recent databases)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith("password="))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def with_password(url: str, password: str) -> str:
    """The URL with this password for its user (replacing one written in it)."""
    if not password:
        return url
    parts = urlsplit(without_password(url))
    user, at, host = parts.netloc.rpartition("@")
    if not at:
        raise ValueError("地址中缺少用户名(postgresql://用户名@服务器:5432/数据库名)")
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def location(text) -> Path | PgLocation:
    """A database argument as given by a user or a caller: a `PgLocation` for a postgresql:// URL,
    else a file `Path`."""
    if isinstance(text, PgLocation):
        return text
    if is_url(text):
        return PgLocation(text)
    return Path(text)
