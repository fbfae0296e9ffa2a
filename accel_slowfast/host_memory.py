"""Keep freed host memory for the next training step (glibc's malloc), for training on a CPU.

A SlowFast step on a CPU allocates and frees hundreds of MiB of activations. By default glibc
hands large freed blocks back to the kernel and asks for fresh pages on the next step, which the
kernel zeroes one page fault at a time: SlowFast R50 at 112 px, batch 2, took ~44,000 page faults
(~170 MiB) per step, and the step ran 20 % faster without them (docs/PERFORMANCE.md). Two
``mallopt`` settings keep the blocks in the process: allocations up to 32 MiB (the largest
threshold glibc accepts) come from the heap instead of their own mappings, and the heap is never
shrunk. The process then holds its peak step memory, as PyTorch's caching allocator does on a GPU.

``train`` applies them when the model runs on the CPU; workers forked afterwards inherit them.
"""

import ctypes
import platform

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>: free memory above this at the heap's top goes back to the kernel
M_MMAP_THRESHOLD = -3  # allocations at least this large get their own mapping, unmapped when freed
LARGEST_MMAP_THRESHOLD = 32 * 2**20  # glibc refuses more on 64-bit (HEAP_MAX_SIZE / 2)
NEVER_TRIM = 2**31 - 1  # mallopt takes a C int


def keep_freed_memory() -> bool:
    """Apply both settings to this process; False (nothing changed) where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
