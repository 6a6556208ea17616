"""Persistence of dataset, job, event, loss and export records.

``Store`` is the one writer (the job registry owns it); ``ReadStore`` is what
every other process opens to read, without queueing behind the writer: SQLite
in WAL mode lets readers and the writer work at once, and a write is on disk
(``synchronous=FULL``) before the registry acknowledges it.
"""

from .reader import ReadStore
from .writer import Store

__all__ = ["ReadStore", "Store"]
