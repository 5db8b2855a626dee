"""Every window and dialog opens inside the screen's available area: on a 1366×768 laptop under the
Windows taskbar (1366×728), frame and title bar included, and none needs more than that even with
the taller title bar of Windows (app/ui/screen_fit.py). Driven through the screenshots module, which
opens each screen a new user meets, at the size it opens with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("PySide6")

from tests.support.jiandang_test_hooks import subprocess_env  # noqa: E402

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from app.ui import screenshots
    frames = []
    screenshots.make(Path(sys.argv[1]), per_village=2, frames=frames)
    print("FRAMES" + json.dumps(frames))
""")


def test_every_window_the_screenshots_open_fits_a_1366x768_laptop_under_its_taskbar(tmp_path):
    env = subprocess_env(JIANDANG_HOME=str(tmp_path / "home"))
    env.pop("QT_QPA_PLATFORM", None)  # the screenshots module sets up its 1366×768 offscreen screen
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "shots")], env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("FRAMES"))
    frames = json.loads(line[len("FRAMES"):])
    assert len(frames) == len(os.listdir(tmp_path / "shots")) == 29
    side, title = 8, 31  # a Windows 10/11 frame at 100 % (app.ui.screen_fit.DEFAULT_FRAME)
    for name, (x, y, w, h), (ax, ay, aw, ah), (least_w, least_h) in frames:
        assert (ax, ay, aw, ah) == (0, 0, 1366, 728), name
        assert ax <= x and ay <= y and x + w <= ax + aw and y + h <= ay + ah, (name, (x, y, w, h))
        assert least_w <= aw - 2 * side and least_h <= ah - title - side, (name, least_w, least_h)
    sizes = dict((name, frame[2:]) for name, frame, _, _ in frames)
    assert sizes["editor_1_basic"][1] == 728  # the editor's default 1240×760, shortened to the area
    assert sizes["main"] == [1366, 728]
