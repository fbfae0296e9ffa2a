"""VideoIndex (data/index.py): a compact, read-only index that forked loader workers share."""

import numpy as np
import pytest


def test_records_is_a_read_only_sequence_built_on_access(tmp_path):
    from pathlib import Path

    from accel_slowfast.data.index import VideoIndex, VideoRecord

    records = [VideoRecord(Path(f"/videos/c{i % 3}/ü_{i}.mp4"), i % 3) for i in range(5)]
    index = VideoIndex(records, ["a", "b", "c"], source="list.txt")
    assert len(index) == len(index.records) == 5 and list(index.records) == records
    assert index.records[-1] == records[-1] and index.records[1:3] == records[1:3]
    assert index.paths[4] == "/videos/c1/ü_4.mp4" and index.labels.dtype == np.int32
    with pytest.raises(IndexError):
        index.records[5]
    assert len(VideoIndex([], [])) == 0 and list(VideoIndex([], []).records) == []


def test_a_forked_process_that_reads_every_video_shares_the_index_instead_of_copying_it():
    """Data-loader workers are forked: reading Python objects writes their reference counts, copying the pages.

    The worker reads ``paths`` and ``labels`` as ``ClipDataset`` does (``records`` would build a ``Path`` per
    video, and Python 3.11's pathlib interns each name, which copies the interpreter's table of interned
    strings once, ~8-15 MiB whatever the index). A list of 200k records grew the child by ~56 MiB here.
    """
    import multiprocessing
    from pathlib import Path

    from accel_slowfast.data.index import VideoIndex, VideoRecord

    index = VideoIndex([VideoRecord(Path(f"/data/kinetics/train/class_{i % 400:03d}/{i:07d}.mp4"), i % 400)
                        for i in range(200_000)], [str(i) for i in range(400)])

    def private_kib() -> int:
        fields = dict(line.split(":") for line in open("/proc/self/smaps_rollup").read().splitlines()[1:])
        return int(fields["Private_Clean"].split()[0]) + int(fields["Private_Dirty"].split()[0])

    def read_all(pipe) -> None:
        before = private_kib()
        assert sum(len(index.paths[i]) + int(index.labels[i]) for i in range(0, len(index), 7)) > 0  # every page
        pipe.send(private_kib() - before)

    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=read_all, args=(send,))
    child.start()
    grown_kib = receive.recv()
    child.join()
    assert grown_kib < 4096, f"the child copied {grown_kib} KiB of the parent's memory"
