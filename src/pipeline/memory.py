"""Peak memory of the current process, for job metrics and benchmarks."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB: Linux ``VmHWM``, which exec resets (so a
    job started by Snakemake or a benchmark worker does not report its parent's peak, as
    ``ru_maxrss`` can); ``ru_maxrss`` where /proc is unavailable."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
