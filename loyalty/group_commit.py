"""Group commit: requests that arrive together in one process are written in one DB transaction.

A sale alone costs a transaction of its own, its statements and a commit; a batch of a hundred costs
hardly more statements in all (`python bench/profile_sale.py`; figures in bench/README.md). When
several requests of one worker process wait at the same time, the first becomes the leader: it takes
everything queued, hands it to `commit_batch` (which writes and commits it as one batch and answers
every item), then passes the lead to the oldest request that queued meanwhile.
Under light load each request is its own batch and pays nothing extra (no thread hop, no waiting);
under heavy load the batches grow by themselves, exactly when the saving matters.

Nothing here knows about HTTP or the database; `commit_batch` does the work and the commit in the
leader's thread (which therefore needs what `commit_batch` needs, e.g. an application context).
"""

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Ticket(Generic[T, R]):
    """One queued item: `item` in, then `result` or `error` out; `_turn` is set when it is answered
    or when it is its turn to lead."""

    __slots__ = ("item", "result", "error", "answered", "_turn")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.answered = False
        self._turn = threading.Event()


class GroupCommit(Generic[T, R]):
    def __init__(self, commit_batch: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 200) -> None:
        self._commit_batch = commit_batch
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[Ticket[T, R]] = []
        self._leading = False

    def submit(self, item: T) -> R:
        """Commit `item` with whatever else is queued; its result, or the exception the batch raised."""
        ticket: Ticket[T, R] = Ticket(item)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._leading
            self._leading = True
        if not lead:
            ticket._turn.wait()
        if not ticket.answered:
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
        try:
            results = self._commit_batch([ticket.item for ticket in batch])
            for ticket, result in zip(batch, results, strict=True):
                ticket.result = result
        except BaseException as error:  # every waiter gets the batch's failure, and the lead moves on
            for ticket in batch:
                ticket.error = error
        finally:
            for ticket in batch:
                ticket.answered = True
                ticket._turn.set()
            with self._lock:
                if self._queue:
                    self._queue[0]._turn.set()
                else:
                    self._leading = False
