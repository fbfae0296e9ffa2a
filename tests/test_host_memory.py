import platform
import subprocess
import sys

import pytest

# Allocate 40 x 4 MiB tensors, free them all, three times; print the page faults of the third round.
ROUNDS = """
import resource, sys, torch
from accel_slowfast.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [torch.ones(4 * 2**20, dtype=torch.uint8) for _ in range(40)]
    del blocks
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults_of_third_round(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    pages = 40 * 4 * 2**20 // 4096  # what the round touches
    assert page_faults_of_third_round("default") > pages // 2  # glibc gave the 160 MiB back and faults it in again
    assert page_faults_of_third_round("keep") < pages // 20  # kept: the same blocks are reused
