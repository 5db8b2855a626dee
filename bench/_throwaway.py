"""Benchmarks make throwaway databases: they use a cheap Argon2id profile for new passphrase wraps
(unlocking is not part of any figure here). `import _throwaway` before creating databases."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.store import crypto  # noqa: E402

crypto.use_kdf_in_this_process(crypto.KdfParams(memory_kib=8192, iterations=1, lanes=1))
