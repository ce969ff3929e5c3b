"""Tests for meltica_nb.concurrency: every thread joined, first error wins, nothing leaks."""

from __future__ import annotations

import threading
import time

import pytest

from meltica_nb.concurrency import CancelToken, TaskGroup, TaskGroupStats
from meltica_nb.errors import MelticaError, TaskGroupError

SHORT = 0.05
LONG = 5.0  # upper bound a cancelled worker must never reach


def group_threads(group: str) -> list[str]:
    """Names of live threads belonging to ``group`` (by the ``"<group>:"`` name prefix)."""
    return [t.name for t in threading.enumerate() if t.name.startswith(f"{group}:")]


def loop_until_cancelled(token: CancelToken, seen: list[str] | None = None) -> None:
    while not token.wait(0.01):
        pass
    if seen is not None:
        seen.append("exited")


def fail_now(token: CancelToken, msg: str = "boom") -> None:
    raise ValueError(msg)


def fail_after_cancel(token: CancelToken) -> None:
    token.wait(LONG)
    raise KeyError("second")


# -- CancelToken -----------------------------------------------------------------------------


def test_cancel_token_wait_and_flag() -> None:
    token = CancelToken()
    assert not token.cancelled
    assert token.wait(0.01) is False
    token.cancel()
    assert token.cancelled
    assert token.wait(0.0) is True
    assert "cancelled=True" in repr(token)


# -- normal operation ------------------------------------------------------------------------


def test_workers_run_and_group_joins() -> None:
    results: list[int] = []
    lock = threading.Lock()
    names: list[str] = []

    def work(token: CancelToken, value: int) -> None:
        with lock:
            results.append(value * 2)
            names.append(threading.current_thread().name)

    with TaskGroup("run") as tg:
        for i in range(5):
            tg.start(work, i)
        tg.start(work, 10, name="custom")

    assert sorted(results) == [0, 2, 4, 6, 8, 20]
    assert "run:work" in names and "run:custom" in names
    assert tg.alive() == []
    assert group_threads("run") == []


def test_threads_are_non_daemon() -> None:
    daemon_flags: list[bool] = []

    def work(token: CancelToken) -> None:
        daemon_flags.append(threading.current_thread().daemon)

    with TaskGroup("nd") as tg:
        tg.start(work)
    assert daemon_flags == [False]
    assert group_threads("nd") == []


def test_normal_exit_does_not_cancel() -> None:
    observed: list[bool] = []

    def work(token: CancelToken) -> None:
        time.sleep(SHORT)
        observed.append(token.cancelled)

    with TaskGroup("nocancel") as tg:
        tg.start(work)
    assert observed == [False]
    assert not tg.cancelled
    assert group_threads("nocancel") == []


def test_worker_may_start_sibling_while_joining() -> None:
    done: list[str] = []

    def child(token: CancelToken) -> None:
        time.sleep(SHORT)
        done.append("child")

    def parent(token: CancelToken, tg: TaskGroup) -> None:
        time.sleep(SHORT)
        tg.start(child)
        done.append("parent")

    with TaskGroup("nursery") as tg:
        tg.start(parent, tg)
    assert sorted(done) == ["child", "parent"]
    assert tg.stats().started == 2
    assert group_threads("nursery") == []


# -- errors ----------------------------------------------------------------------------------


def test_worker_error_cancels_others_and_is_reraised_after_join() -> None:
    seen: list[str] = []
    tg = TaskGroup("err")
    tg.start(loop_until_cancelled, seen, name="looper")
    tg.start(fail_now, "boom", name="failer")
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="boom"):
        tg.join()
    assert time.monotonic() - t0 < LONG / 2
    assert seen == ["exited"]  # looper saw the cancel and returned before join re-raised
    assert tg.cancelled
    assert tg.alive() == []
    assert group_threads("err") == []


def test_worker_error_reraised_by_context_manager() -> None:
    seen: list[str] = []
    with pytest.raises(ValueError, match="cm-boom"), TaskGroup("errcm") as tg:
        tg.start(loop_until_cancelled, seen)
        tg.start(fail_now, "cm-boom")
    assert seen == ["exited"]
    assert group_threads("errcm") == []


def test_second_error_attached_as_note(caplog: pytest.LogCaptureFixture) -> None:
    tg = TaskGroup("notes")
    tg.start(fail_after_cancel, name="second")
    tg.start(fail_now, "first", name="first")
    with (
        caplog.at_level("ERROR", logger="meltica_nb.concurrency"),
        pytest.raises(ValueError, match="first") as info,
    ):
        tg.join()
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1
    assert "notes:second" in notes[0] and "KeyError" in notes[0]
    assert any("notes:second" in r.getMessage() for r in caplog.records)
    assert tg.stats().failed == 2
    assert group_threads("notes") == []


def test_error_reported_once() -> None:
    tg = TaskGroup("once")
    tg.start(fail_now)
    with pytest.raises(ValueError):
        tg.join()
    tg.join()  # already reported: does not raise again
    assert group_threads("once") == []


def test_body_exception_wins_and_worker_errors_become_notes() -> None:
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="body") as info, TaskGroup("body") as tg:
        tg.start(loop_until_cancelled, seen)
        tg.start(fail_now, "worker-err", name="w")
        time.sleep(SHORT)  # let the worker fail first
        raise RuntimeError("body")
    notes = getattr(info.value, "__notes__", [])
    assert any("body:w" in n and "worker-err" in n for n in notes)
    assert seen == ["exited"]
    assert group_threads("body") == []


def test_body_exception_cancels_workers() -> None:
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="body-only"), TaskGroup("bodyc") as tg:
        tg.start(loop_until_cancelled, seen)
        raise RuntimeError("body-only")
    assert seen == ["exited"]
    assert tg.cancelled
    assert group_threads("bodyc") == []


def test_keyboard_interrupt_in_body_cancels_joins_and_propagates() -> None:
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt), TaskGroup("kbi") as tg:
        tg.start(loop_until_cancelled, seen)
        raise KeyboardInterrupt
    assert seen == ["exited"]
    assert group_threads("kbi") == []


# -- misuse ----------------------------------------------------------------------------------


def test_start_after_close_raises() -> None:
    with TaskGroup("closed") as tg:
        tg.start(lambda token: None, name="noop")
    with pytest.raises(TaskGroupError, match="closed"):
        tg.start(lambda token: None)
    assert isinstance(TaskGroupError("x"), MelticaError)
    assert group_threads("closed") == []


def test_start_after_worker_error_raises_and_error_still_reraised() -> None:
    tg = TaskGroup("cancelled")
    tg.start(fail_now, "early")
    assert tg.token.wait(LONG)  # the failure cancels the group
    with pytest.raises(TaskGroupError, match="worker failed"):
        tg.start(loop_until_cancelled)
    with pytest.raises(ValueError, match="early"):
        tg.join()
    assert group_threads("cancelled") == []


# -- timeouts and stop -----------------------------------------------------------------------


def test_join_timeout_names_stuck_thread() -> None:
    release = threading.Event()

    def stuck(token: CancelToken) -> None:
        release.wait(LONG)  # deliberately ignores the token

    tg = TaskGroup("tmo")
    tg.start(stuck, name="stuck")
    tg.start(lambda token: None, name="quick")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="tmo:stuck") as info:
        tg.join(timeout=SHORT)
    assert time.monotonic() - t0 < 1.0
    assert "tmo:quick" not in str(info.value)
    assert tg.alive() == ["tmo:stuck"]
    release.set()
    tg.join(timeout=LONG)
    assert group_threads("tmo") == []


def test_join_timeout_is_total_deadline() -> None:
    release = threading.Event()

    def stuck(token: CancelToken) -> None:
        release.wait(LONG)

    tg = TaskGroup("deadline")
    for i in range(5):
        tg.start(stuck, name=f"s{i}")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        tg.join(timeout=0.1)
    assert time.monotonic() - t0 < 0.4  # not 5 x 0.1
    release.set()
    tg.join(timeout=LONG)
    assert group_threads("deadline") == []


def test_join_timeout_with_worker_error_raises_worker_error() -> None:
    release = threading.Event()

    def stuck(token: CancelToken) -> None:
        release.wait(LONG)

    tg = TaskGroup("tmoerr")
    tg.start(stuck, name="stuck")
    tg.start(fail_now, "root-cause")
    assert tg.token.wait(LONG)
    with pytest.raises(ValueError, match="root-cause") as info:
        tg.join(timeout=SHORT)
    notes = getattr(info.value, "__notes__", [])
    assert any("tmoerr:stuck" in n for n in notes)
    release.set()
    tg.join(timeout=LONG)
    assert group_threads("tmoerr") == []


def test_stop_cancels_and_joins_service() -> None:
    seen: list[str] = []
    tg = TaskGroup("svc")
    for i in range(3):
        tg.start(loop_until_cancelled, seen, name=f"loop{i}")
    time.sleep(SHORT)
    assert sorted(tg.alive()) == ["svc:loop0", "svc:loop1", "svc:loop2"]
    tg.stop(timeout=LONG)
    assert seen == ["exited"] * 3
    assert tg.alive() == []
    with pytest.raises(TaskGroupError):
        tg.start(loop_until_cancelled)
    assert group_threads("svc") == []


# -- stats -----------------------------------------------------------------------------------


def test_stats_counts() -> None:
    tg = TaskGroup("stats")
    assert tg.stats() == TaskGroupStats(name="stats", started=0, running=0, failed=0)
    tg.start(loop_until_cancelled, name="a")
    tg.start(loop_until_cancelled, name="b")
    s = tg.stats()
    assert (s.name, s.started, s.running, s.failed) == ("stats", 2, 2, 0)
    with pytest.raises(AttributeError):
        s.started = 5  # type: ignore[misc]
    tg.start(fail_now)
    with pytest.raises(ValueError):
        tg.join(timeout=LONG)
    s = tg.stats()
    assert (s.started, s.running, s.failed) == (3, 0, 1)
    assert "stats" in repr(tg)
    assert group_threads("stats") == []


# -- stress ----------------------------------------------------------------------------------


def test_stress_50_workers_shared_counter() -> None:
    counter = [0]
    lock = threading.Lock()

    def bump(token: CancelToken) -> None:
        for _ in range(1000):
            with lock:
                counter[0] += 1

    with TaskGroup("stress") as tg:
        for i in range(50):
            tg.start(bump, name=f"w{i}")
    assert counter[0] == 50_000
    s = tg.stats()
    assert (s.started, s.running, s.failed) == (50, 0, 0)
    assert group_threads("stress") == []


def test_keyboard_interrupt_while_joining_cancels_joins_and_propagates() -> None:
    import signal

    seen: list[str] = []
    main_ident = threading.main_thread().ident
    if threading.current_thread().ident != main_ident:  # pragma: no cover - e.g. xdist workers
        pytest.skip("needs to run in the main thread")

    def interrupter(token: CancelToken) -> None:
        time.sleep(SHORT)  # let the main thread block in join()
        signal.pthread_kill(main_ident, signal.SIGINT)
        loop_until_cancelled(token, seen)

    # Python's own Ctrl-C handler, whatever the runner left: a shell starts background jobs
    # with SIGINT ignored, and then no KeyboardInterrupt would ever come.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        tg = TaskGroup("kbijoin")
        tg.start(interrupter)
        with pytest.raises(KeyboardInterrupt):
            tg.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == ["exited"]  # cancelled and joined before the interrupt propagated
    assert group_threads("kbijoin") == []
