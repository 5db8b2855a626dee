import multiprocessing
import sys

from app.cli.main import main

if __name__ == "__main__":
    # a frozen (PyInstaller) program started as a worker of `serve --workers N` runs the worker here
    # instead of the command line (app/server/workers.py starts its workers with "spawn")
    multiprocessing.freeze_support()
    sys.exit(main())
