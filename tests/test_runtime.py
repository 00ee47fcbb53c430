"""The process itself (webapp/ops/runtime.py): memory it frees goes back to the system."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT

# In a process of its own: a block the size of a password hash's is freed, then a smaller one
# is; how much of the second the process still holds, in KiB.
KEPT = """
import sys
from webapp.ops import runtime

def rss():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if "VmRSS" in line)

if sys.argv[1] == "tuned":
    assert runtime.give_back_freed_memory()
block = b"x" * (19 << 20)
del block
before = rss()
block = b"x" * (8 << 20)
del block
print(rss() - before)
"""


def kept_kib(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", KEPT, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, on Linux")
def test_memory_freed_goes_back_to_the_system() -> None:
    assert kept_kib("left alone") > 6 * 1024  # the 8 MiB, kept: what the tuning is for
    assert kept_kib("tuned") < 1024
