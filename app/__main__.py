import sys

from app.cli.main import main

if __name__ == "__main__":
    if getattr(sys, "frozen", False):
        # a frozen (PyInstaller) program started as a worker of `serve --workers N` runs the worker here
        # instead of the command line (app/server/workers.py starts its workers with "spawn"). Not
        # frozen, freeze_support does nothing, and importing multiprocessing costs every command line
        # about 5 ms of processor (a USB import started during a burst of uploads shares the cores).
        import multiprocessing

        multiprocessing.freeze_support()
    sys.exit(main())
