#!/usr/bin/env python3
"""compare_dropcache.py FILE [INTERVAL_MS] - keep FILE out of the page cache.

memcached's extstore reads its file with buffered I/O, so without this its
"disk" reads come from memory (4-5 GB/s on these machines, see
/work/shared/PEERS.md). Every INTERVAL_MS (default 10) this drops the cached
pages of FILE with posix_fadvise(DONTNEED), so extstore reads reach the
device, as a working set larger than RAM would make them. Runs until killed.
"""
import os
import sys
import time


def main():
    path = sys.argv[1]
    interval = (float(sys.argv[2]) if len(sys.argv) > 2 else 10.0) / 1000.0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
