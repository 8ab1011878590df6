"""Run an iterator of byte pieces in a thread, a few pieces ahead of its consumer.

Reading a layer is download + digest + gunzip (producer) then tar parsing + hashing
(consumer). ISA-L/zlib and hashlib release the GIL, so when only ONE layer is being read
(a rebase whose OLD layers come from the layer index) the two halves overlap on two
cores. When both images are streamed at once the cores are busy already and a read-ahead
costs more than it saves, so diff.py asks for it only in the first case.

Invariants: at most `depth` pieces wait in the queue (memory stays bounded); an exception
in the producer is raised in the consumer, never lost; the iterator ends only after the
producer ran its source to the end (so a blob digest checked at the end of the source was
checked); a consumer that stops early stops the producer and waits for it.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator

DEPTH = 8
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(source: Iterator[bytes], depth: int = DEPTH, name: str = "layer-read-ahead") -> Iterator[bytes]:
    """The pieces of `source`, produced in a daemon thread up to `depth` pieces ahead."""
    pending: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for piece in source:
                if not put(piece):
                    break
            else:
                put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = pending.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
