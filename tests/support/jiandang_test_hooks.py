"""Test-only hooks, installed by the test suite into its own process (tests/conftest.py) and into the
program processes it starts (tests/support/sitecustomize.py). Not part of the program: nothing in
app/ imports this, and the packaged build does not contain it.

- a cheap Argon2id profile for new passphrase wraps (a real profile takes about 270 ms per unlock);
- `JIANDANG_TEST_HOLD_IMPORT=MARKER`: the first county import holds inside its open transaction
  (after applying the changes, before the receipt and the commit), writing MARKER, so that a test
  can kill the process there; with `JIANDANG_TEST_HOLD_IMPORT_CALL=N` the N-th bundle merged holds
  instead (the middle of a group of bundles merged in one transaction);
- `JIANDANG_TEST_HOLD_CONVERSION=MARKER`: the first conversion of record bodies at unlock
  (app/store/bodies.py) holds inside its open transaction, after re-sealing every record, writing
  MARKER."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.store import crypto

FAST_KDF = crypto.KdfParams(memory_kib=8192, iterations=1, lanes=1)
SUPPORT = Path(__file__).resolve().parent


def install_fast_kdf() -> None:
    crypto.use_kdf_in_this_process(FAST_KDF)


def _hold_first_call(owner, name: str, marker: str | os.PathLike, call: int = 1) -> None:
    """Make the first call (or the `call`-th) of owner.name in this process write `marker` and stop
    for two minutes inside its caller's transaction (so that a test can kill the process there)."""
    real = getattr(owner, name)
    calls = [0]

    def holding(*args, **kw):
        result = real(*args, **kw)
        calls[0] += 1
        if calls[0] >= call and not Path(marker).exists():
            Path(marker).write_text("holding")
            time.sleep(120)
        return result

    setattr(owner, name, holding)


def hold_imports(marker: str | os.PathLike) -> None:
    """Make the first county import of this process stop inside its transaction for two minutes."""
    from app.sync import exchange

    _hold_first_call(exchange, "_import_upstream", marker, int(os.environ.get("JIANDANG_TEST_HOLD_IMPORT_CALL", "1")))


def hold_conversions(marker: str | os.PathLike) -> None:
    """Make the first conversion of record bodies of this process stop inside its transaction."""
    from app.store import bodies

    _hold_first_call(bodies, "convert", marker)


def subprocess_env(**extra) -> dict:
    """os.environ for a program process started by a test: this folder first on PYTHONPATH (so that
    sitecustomize installs the hooks), then the project root."""
    root = SUPPORT.parent.parent
    paths = [str(SUPPORT), str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                          if p and p not in (str(SUPPORT), str(root))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def install_from_environment() -> None:
    install_fast_kdf()
    marker = os.environ.get("JIANDANG_TEST_HOLD_IMPORT")
    if marker:
        hold_imports(marker)
    marker = os.environ.get("JIANDANG_TEST_HOLD_CONVERSION")
    if marker:
        hold_conversions(marker)
