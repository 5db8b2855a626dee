"""jiandang (建档): offline household registration for targeted poverty alleviation."""

import gc as _gc

__version__ = "0.1.0"

# The program's garbage-collection policy, for every entry point (command line, window, service,
# and the benchmarks, which compare against plain sqlite-utils in the same process and so under
# the same policy). Opening a database decodes tens of thousands of long-lived records; with
# CPython's default first threshold (700 new container objects) the collector walks those records
# again and again while they are being loaded, which made loading a county database up to half
# slower. Collections still happen, less often and each over more objects (about 20 ms for a full
# young generation on a laptop).
GC_THRESHOLDS = (50_000, 20, 10)
if _gc.get_threshold()[0] < GC_THRESHOLDS[0]:
    _gc.set_threshold(*GC_THRESHOLDS)
