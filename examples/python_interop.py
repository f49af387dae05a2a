"""Python side of examples/python_interop.ts: standard library and numpy only.

    python3 examples/python_interop.py SEGMENT_NAME ARRAY_NAME ARRAY_OFFSET ARRAY_LENGTH

Reads the text and the float64 array that TypeScript wrote into shared memory, writes the
answer back in place: the array's sum into the segment (as text) and every element doubled.
"""
import json
import sys
from multiprocessing import resource_tracker, shared_memory

import numpy as np


def attach(name):
    shm = shared_memory.SharedMemory(name=name)
    # Python < 3.13 registers even segments it did not create and unlinks them at exit:
    # the TypeScript side owns these, so stop tracking them.
    resource_tracker.unregister(shm._name, "shared_memory")
    return shm


def main():
    seg_name, h = sys.argv[1], json.loads(sys.argv[2])  # h: the SharedArray's handle()
    seg = attach(seg_name)
    arr_seg = attach(h["name"])
    try:
        question = bytes(seg.buf[: bytes(seg.buf).index(0)]).decode()
        # dataOffset is where the elements start (the handle's offset is where the header starts).
        data = np.ndarray(h["shape"], dtype=h["dtype"], buffer=arr_seg.buf, offset=h["dataOffset"])
        total = float(data.sum())
        data *= 2  # in place: TypeScript sees the doubled values at once
        answer = f"python {sys.version_info.major}.{sys.version_info.minor} read {question!r}; sum={total!r}"
        encoded = answer.encode() + b"\0"
        seg.buf[: len(encoded)] = encoded
        print(answer)
        del data  # release the buffer export before closing
    finally:
        seg.close()
        arr_seg.close()


main()
