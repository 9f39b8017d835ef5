"""How long the process's allocators keep freed pages for reuse.

A query allocates and frees hundreds of MiB a second (decoded batches, hash tables,
index arrays). Arrow's allocator (mimalloc in the pyarrow wheels) hands freed pages
back to the system after a short delay by default, and every page handed back is
faulted in and zeroed by the kernel when it is used again (with transparent huge
pages 2 MiB at a time). Over TPC-H SF 1 that churn was 6.8 GiB of pages handed back
in two runs of each query, and the kernel's page zeroing alone 10% of the process's
CPU.

So shoal asks mimalloc to keep freed pages for ``PURGE_DELAY_MS`` before handing
them back, and frees explicitly instead, where it matters (``pool.release_unused``):

* after a spill, a sort run or a grace partition (the memory is not coming back);
* after a task that held a large share of its query's budget;
* when a query ends and the process holds more than ``retained_bytes`` resident.

mimalloc reads its options once, when Arrow's library loads: ``keep_freed_pages``
only takes effect when ``import shoal`` comes before pyarrow's first import (this
module applies it on import, the first thing ``shoal/__init__.py`` does). A
``MIMALLOC_PURGE_DELAY`` already in the environment is left as it is. This module
imports no pyarrow.
"""

from __future__ import annotations

import os
import sys

#: How long mimalloc keeps a freed page before handing it back to the system.
PURGE_DELAY_MS = 10_000
_PURGE_DELAY_ENV = "MIMALLOC_PURGE_DELAY"

#: A query that ends with the process holding more than this resident hands every
#: free page back (``retained_bytes``); below it the pages stay for the next query.
#: Every page handed back is faulted in and zeroed again by the next query that needs
#: it: at 512 MiB, TPC-H SF 1 run back to back handed back 330-395 MiB after each of
#: its larger queries. At 2 GiB the runs took 2-6% less time (paired, in one
#: process); with glibc at one arena (``pool.fix_mmap_threshold``) the peak RSS stayed
#: where the 512 MiB bound had it (655-666 → 659 MiB). Freed pages left here still go
#: back after ``PURGE_DELAY_MS``.
RETAIN_MAX_BYTES = 2 << 30
#: ... and never more than this share of the query's memory limit.
RETAIN_SHARE = 1 / 8


def keep_freed_pages() -> None:
    """Set mimalloc's purge delay for this process (and the processes it starts),
    unless the environment sets one or pyarrow is loaded already (too late: the
    option was read)."""
    if _PURGE_DELAY_ENV not in os.environ and "pyarrow.lib" not in sys.modules:
        os.environ[_PURGE_DELAY_ENV] = str(PURGE_DELAY_MS)


def retained_bytes(memory_limit: int) -> int:
    """The resident bytes a process may keep after a query with this limit ends."""
    return min(RETAIN_MAX_BYTES, int(memory_limit * RETAIN_SHARE))


def resident_bytes() -> int | None:
    """The process's resident set now, or None where /proc does not tell it."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# On import: ``shoal/__init__.py`` imports this module before anything else.
keep_freed_pages()

__all__ = ["PURGE_DELAY_MS", "keep_freed_pages", "resident_bytes", "retained_bytes"]
