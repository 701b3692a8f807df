"""loyalty/group_commit.py: who leads, what is batched together, and where a failure goes."""

import threading

import pytest

from loyalty.group_commit import GroupCommit


class Recorder:
    """A `post` that records each batch; while `gate` is clear, the batch in progress waits on it."""

    def __init__(self, fail_on=None):
        self.batches: list[list] = []
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items):
        self.batches.append(list(items))
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(timeout=10)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"refused {self.fail_on}")
        return [item * 10 for item in items]


def submit_in_thread(group, item, answers, name):
    def run():
        try:
            answers[item] = group.submit(item)
        except Exception as error:  # the test inspects what each waiter got
            answers[item] = error
    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def wait_until_queued(group, count):
    for _ in range(1000):
        with group._lock:
            if len(group._queue) >= count:
                return
        threading.Event().wait(0.005)
    raise AssertionError(f"{count} items never queued")


def test_a_lone_item_is_posted_at_once_in_the_callers_thread():
    post = Recorder()
    group = GroupCommit(post)
    assert group.submit(7) == 70
    assert post.batches == [[7]]
    assert post.threads == [threading.current_thread().name]
    assert group.submit(8) == 80
    assert post.batches == [[7], [8]]


def test_items_arriving_while_a_batch_is_posted_go_together_in_the_next():
    post = Recorder()
    group = GroupCommit(post)
    answers: dict = {}
    post.gate.clear()
    first = submit_in_thread(group, 1, answers, "leader")
    assert post.entered.wait(timeout=10)
    others = [submit_in_thread(group, item, answers, f"waiter-{item}") for item in (2, 3, 4)]
    wait_until_queued(group, 3)
    post.gate.set()
    for thread in [first, *others]:
        thread.join(timeout=10)
    assert answers == {1: 10, 2: 20, 3: 30, 4: 40}
    assert post.batches == [[1], [2, 3, 4]]
    # The oldest waiter led the second batch: no extra thread is ever involved.
    assert post.threads == ["leader", "waiter-2"]
    assert group._leading is False and group._queue == []


def test_a_failed_batch_fails_each_of_its_items_and_the_next_batch_still_runs():
    post = Recorder(fail_on=3)
    group = GroupCommit(post)
    answers: dict = {}
    post.gate.clear()
    first = submit_in_thread(group, 1, answers, "leader")
    assert post.entered.wait(timeout=10)
    others = [submit_in_thread(group, item, answers, f"waiter-{item}") for item in (2, 3)]
    wait_until_queued(group, 2)
    post.gate.set()
    for thread in [first, *others]:
        thread.join(timeout=10)
    assert answers[1] == 10
    assert isinstance(answers[2], ValueError) and isinstance(answers[3], ValueError)
    assert answers[2] is answers[3]
    assert group.submit(5) == 50
    with pytest.raises(ValueError, match="refused 3"):
        group.submit(3)
    assert group._leading is False


def test_a_batch_holds_at_most_max_batch_items():
    post = Recorder()
    group = GroupCommit(post, max_batch=2)
    answers: dict = {}
    post.gate.clear()
    first = submit_in_thread(group, 1, answers, "leader")
    assert post.entered.wait(timeout=10)
    others = []
    for item in (2, 3, 4, 5, 6):
        others.append(submit_in_thread(group, item, answers, f"waiter-{item}"))
        wait_until_queued(group, item - 1)  # one at a time, so the queue keeps their order
    post.gate.set()
    for thread in [first, *others]:
        thread.join(timeout=10)
    assert answers == {item: item * 10 for item in range(1, 7)}
    assert post.batches == [[1], [2, 3], [4, 5], [6]]
