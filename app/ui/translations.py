"""Qt's own texts in Chinese: the buttons of message boxes and input dialogs (OK, Cancel, Save, ...),
file dialogs, the context menus of entry fields, the wizard's buttons.

Qt ships them as ``qtbase_zh_CN.qm``. install_translations() looks for it first in the program's
``resources/translations`` (where build.spec copies it, so the packaged program never depends on
where PyInstaller puts Qt's own folder), then in PySide6's translations folder
(``QLibraryInfo.path(QLibraryInfo.TranslationsPath)``). A small translator in code, asked first,
supplies the texts that catalogue lacks (Qt 6's file dialog labels 查找范围 and 文件类型) and, when
neither folder has the catalogue, the standard buttons' texts, so a message box never asks in
English. The default locale becomes Chinese (China) too: calendar pop-ups name months and weekdays
in Chinese.

Where a message names one of its buttons, the dialog sets that button's text itself
(chinese_buttons): Qt says 丢弃 for Discard, the program's messages say 放弃."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QLibraryInfo, QLocale, QTranslator
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from app.paths import resources_dir

QM = "qtbase_zh_CN.qm"

# Texts Qt 6 shows that qtbase_zh_CN.qm (as shipped with PySide6 6.12) does not translate.
SUPPLEMENT = {
    "QFileDialog": {"&Look in:": "查找范围(&L)：", "Files of &type:": "文件类型(&T)：", "&File name:": "文件名称(&F)："},
}
# Without the catalogue: QPlatformTheme is the context of Qt's standard button texts (QMessageBox,
# QDialogButtonBox, QInputDialog); QMessageBox's own for its details button. Qt's words (丢弃 for
# Discard), so the program reads the same with or without the catalogue.
FALLBACK = {
    "QPlatformTheme": {
        "OK": "确定", "Save": "保存", "Save All": "全部保存", "Open": "打开", "&Yes": "是(&Y)", "Yes to &All": "全部是(&A)",
        "&No": "否(&N)", "N&o to All": "全部否(&O)", "Abort": "中止", "Retry": "重试", "Ignore": "忽略", "Close": "关闭",
        "Cancel": "取消", "Discard": "丢弃", "Help": "帮助", "Apply": "应用", "Reset": "重置",
        "Restore Defaults": "恢复默认值", "Don't Save": "不保存", "Close without Saving": "不保存并关闭",
    },
    "QMessageBox": {"Show Details...": "显示详细信息…", "Hide Details...": "隐藏详细信息…"},
}

# The program's words for standard buttons, set on the dialogs whose text names a button.
BUTTON_TEXTS = {
    QMessageBox.Ok: "确定", QMessageBox.Save: "保存", QMessageBox.Discard: "放弃", QMessageBox.Cancel: "取消",
    QMessageBox.Yes: "是", QMessageBox.No: "否", QMessageBox.Close: "关闭", QMessageBox.Open: "打开",
    QMessageBox.Apply: "应用", QMessageBox.Retry: "重试", QMessageBox.Ignore: "忽略", QMessageBox.Abort: "中止",
}


class TextTranslator(QTranslator):
    """Translations from a table in code ({context: {source: text}})."""

    def __init__(self, tables: dict, parent=None):
        super().__init__(parent)
        self.tables = tables

    def translate(self, context, source_text, disambiguation=None, n=-1):  # noqa: D401 - Qt's signature
        return self.tables.get(context, {}).get(source_text)  # None: a null string, Qt asks the next translator

    def isEmpty(self) -> bool:
        return False


_installed: dict[int, tuple[list[QTranslator], str]] = {}  # id(app) -> (translators, where the catalogue came from)


def candidates() -> list[Path]:
    """Where qtbase_zh_CN.qm is looked for, in order."""
    return [resources_dir() / "translations" / QM, Path(QLibraryInfo.path(QLibraryInfo.TranslationsPath)) / QM]


def install_translations(app) -> str:
    """Install Qt's Chinese translations on `app` (once). Returns the .qm file used, or "fallback"."""
    if id(app) in _installed:
        return _installed[id(app)][1]
    QLocale.setDefault(QLocale(QLocale.Chinese, QLocale.China))
    translators: list[QTranslator] = []
    source = "fallback"
    for path in candidates():
        loaded = QTranslator(app)
        if path.is_file() and loaded.load(str(path)):
            translators.append(loaded)
            source = str(path)
            break
    tables = {ctx: dict(texts) for ctx, texts in SUPPLEMENT.items()}
    if not translators:
        for ctx, texts in FALLBACK.items():
            tables.setdefault(ctx, {}).update(texts)
    translators.append(TextTranslator(tables, app))  # installed last: asked first
    for t in translators:
        app.installTranslator(t)
    _installed[id(app)] = (translators, source)
    return source


def chinese_buttons(box, texts: dict | None = None) -> None:
    """Set the texts of a QMessageBox's or QDialogButtonBox's standard buttons explicitly."""
    wanted = {**BUTTON_TEXTS, **(texts or {})}
    is_box = isinstance(box, QMessageBox)
    for which, text in wanted.items():
        button = box.button(which if is_box else QDialogButtonBox.StandardButton(which.value))
        if button is not None:
            button.setText(text)
