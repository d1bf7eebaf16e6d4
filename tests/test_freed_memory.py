"""The grading process hands freed heap pages back after each submission.

A ResNet50 submission frees hundreds of MiB in small pieces that glibc would otherwise keep
for the process; bench/model_speed_bench.py measures what that does to the steady-state peak.
This checks the mechanism itself on this platform: memory freed in small blocks stays in
the process until `_return_freed_memory` runs, and leaves it then.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from grader.run import grading

SCRIPT = textwrap.dedent("""
    import os
    from grader.run import grading

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    # 300 MiB in 64 KiB blocks (below glibc's mmap threshold, so they live on the heap),
    # then every other one freed: the heap cannot shrink from its top, so without a trim
    # the freed half stays in the process.
    blocks = [bytearray(65536) for _ in range(4800)]
    del blocks[::2]
    before = rss_mib()
    grading._return_freed_memory()
    after = rss_mib()
    print(f"{before:.1f} {after:.1f}")
""")


@pytest.mark.skipif(grading._TRIM is None, reason="not glibc: the allocator has no malloc_trim")
def test_freed_heap_pages_leave_the_process_after_a_submission():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    before, after = map(float, out.stdout.split())
    assert before - after > 80, f"RSS {before:.0f} MiB -> {after:.0f} MiB: freed pages were not handed back"


def test_release_models_hands_memory_back_every_time(monkeypatch):
    calls = []
    monkeypatch.setattr(grading, "_TRIM", lambda pad: calls.append(pad))
    grading.release_models()
    grading.release_models()
    assert calls == [0, 0]
