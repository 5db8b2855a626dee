"""PySide6 windows and dialogs: the only package that imports Qt. Start with `app.ui.app.run`."""
