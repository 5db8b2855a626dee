"""Reference data held by every database: administrative divisions and the poverty line per year
(plain tables: public data). Part of `Store` (app/store/db.py); app.services.reference checks and edits it."""

from __future__ import annotations

from collections.abc import Iterable


class ReferenceData:
    """Divisions and poverty lines of a `Store` (uses its `conn` and `transaction()`)."""

    def set_divisions(self, rows: Iterable[tuple[str, str, str, str | None]]) -> None:
        """(code, name, level, parent) rows of the administrative divisions this database knows."""
        with self.transaction():
            self.conn.executemany("INSERT OR REPLACE INTO divisions(code, name, level, parent) VALUES (?,?,?,?)", list(rows))

    def divisions(self, level: str | None = None) -> list[dict]:
        sql = "SELECT code, name, level, parent FROM divisions"
        args = []
        if level:
            sql += " WHERE level = ?"
            args.append(level)
        return [dict(zip(("code", "name", "level", "parent"), r)) for r in self.conn.execute(sql + " ORDER BY code", args)]

    def division_name(self, code: str) -> str:
        row = self.conn.execute("SELECT name FROM divisions WHERE code = ?", (code,)).fetchone()
        return row[0] if row else code

    def set_poverty_line(self, year: int, line: float, source: str = "") -> None:
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO poverty_lines(year, line, source) VALUES (?,?,?)", (year, line, source))

    def poverty_line(self, year: int) -> float | None:
        row = self.conn.execute("SELECT line FROM poverty_lines WHERE year = ?", (year,)).fetchone()
        return row[0] if row else None

    def poverty_lines(self) -> dict[int, float]:
        return dict(self.conn.execute("SELECT year, line FROM poverty_lines ORDER BY year").fetchall())
