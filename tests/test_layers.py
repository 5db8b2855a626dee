"""The layers of docs/developing.md hold in the code: every import in app/ (also those inside
functions) points to a line further down the picture, PySide6 only in app/ui, every package placed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"


def picture() -> list[set[str]]:
    """The layer picture of docs/developing.md, top first: per line the units it names
    ("cli", "ui", ..., "settings", "paths", "__init__", "__main__")."""
    text = (ROOT / "docs" / "developing.md").read_text(encoding="utf-8")
    section = text.split("## Layout and layers", 1)[1]
    block = section.split("```", 2)[1]
    layers = []
    for line in block.splitlines():
        if line.startswith("app/"):
            names = re.findall(r"app/([\w]+)(?:\.py)?", line.split("  ")[0] if "  " in line else line)
            layers.append(set(names))
    return layers


def unit_of(module: str) -> str | None:
    """"app.cli.main" -> "cli"; "app.settings" -> "settings"; "app" -> "__init__"."""
    parts = module.split(".")
    if parts[0] != "app":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, resolving relative ones and `from app import x`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = path.parts
    package = ".".join(parts[max(i for i, part in enumerate(parts) if part == "app"):-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            if base == "app":  # from app import settings / __version__
                for alias in node.names:
                    out.append((node.lineno, f"app.{alias.name}" if (APP / alias.name).exists()
                                or (APP / f"{alias.name}.py").exists() else "app"))
            else:
                out.append((node.lineno, base))
    return out


def own_unit(path: Path) -> str:
    rel = path.relative_to(APP).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def test_the_picture_names_every_package_and_module_of_app():
    placed = set().union(*picture())
    present = {p.name for p in APP.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {p.stem for p in APP.glob("*.py")}
    assert present - placed == set(), f"not in the layer picture of docs/developing.md: {present - placed}"
    assert placed - present == set(), f"in the picture but not in app/: {placed - present}"


def upward_imports(path: Path, mine: str, level: dict[str, int]) -> list[str]:
    wrong = []
    for line, module in imports(path):
        target = unit_of(module)
        if target is None or target == mine:
            continue
        if level[target] <= level[mine]:
            wrong.append(f"{path.relative_to(path.parents[2]).as_posix()}:{line} ({mine}) imports {module} ({target})")
    return wrong


def levels() -> dict[str, int]:
    return {unit: i for i, names in enumerate(picture()) for unit in names}


def test_imports_point_down_the_layers():
    level = levels()
    wrong = [w for path in sorted(APP.rglob("*.py")) for w in upward_imports(path, own_unit(path), level)]
    assert wrong == [], "imports against the layers of docs/developing.md:\n" + "\n".join(wrong)


def test_only_the_window_imports_qt():
    wrong = [f"{path.relative_to(ROOT)}:{line}" for path in sorted(APP.rglob("*.py")) if own_unit(path) != "ui"
             for line, module in imports(path) if module.split(".")[0] in ("PySide6", "shiboken6")]
    assert wrong == []


def test_the_check_finds_an_upward_and_a_sideways_import(tmp_path):
    """The check itself: a store module importing services (inside a function) is upward; settings
    importing paths is sideways (one line of the picture); store importing core and settings is fine."""
    probe = tmp_path / "app" / "store" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from app.services import households\n", encoding="utf-8")
    assert upward_imports(probe, "store", levels()) == ["app/store/probe.py:2 (store) imports app.services (services)"]
    probe.write_text("from app.core import values\nfrom app import settings\n", encoding="utf-8")
    assert upward_imports(probe, "store", levels()) == []
    probe.write_text("from app.paths import font_path\n", encoding="utf-8")  # the same line of the picture
    assert upward_imports(probe, "settings", levels()) == ["app/store/probe.py:1 (settings) imports app.paths (paths)"]
