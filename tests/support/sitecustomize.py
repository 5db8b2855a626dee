"""Imported by Python at start-up in every process whose PYTHONPATH has this folder, which only the
test suite adds (tests/conftest.py): installs the test hooks (tests/support/jiandang_test_hooks.py)
into the program processes the tests start. Not part of the program."""

import jiandang_test_hooks

jiandang_test_hooks.install_from_environment()
