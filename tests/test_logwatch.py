"""The tests' log watcher: fed by structlog or by a process's JSON lines, waited on without sleeping."""

from __future__ import annotations

import pytest
import structlog
import trio
import trio.testing
from tests.logwatch import LogWatch


class TestFeeds:
    def test_json_lines_split_anywhere_are_whole_events(self) -> None:
        """Chunks cut mid-line make one event per complete line; a last line without newline counts at close."""
        watch = LogWatch()
        watch.feed(b'{"event":"a","n":1}\n{"ev')
        assert watch.entries == [{"event": "a", "n": 1}]
        watch.feed(b'ent":"b"}\n\n{"event":"c"}')
        assert [e["event"] for e in watch.entries] == ["a", "b"]
        watch.close()
        assert [e["event"] for e in watch.entries] == ["a", "b", "c"]

    @pytest.mark.parametrize("line", [b"plain text", b"[1,2]", b"{broken"])
    def test_a_line_that_is_not_a_json_object_fails_loudly(self, line: bytes) -> None:
        """stdout of a JSON-logging process holds JSON objects only: anything else is an assertion failure."""
        with pytest.raises(AssertionError, match="not a JSON log line"):
            LogWatch().feed(line + b"\n")

    def test_as_a_structlog_processor_it_keeps_a_copy(self) -> None:
        """Under capture_logs the watcher sees each event with its fields, and keeps them as they were."""
        watch = LogWatch()

        def scribble(_logger: object, _method: str, event_dict: dict[str, object]) -> dict[str, object]:
            event_dict["later"] = True
            return event_dict

        with structlog.testing.capture_logs(processors=[watch, scribble]):
            structlog.get_logger().info("offer.new", offer_id=7)
        assert watch.find("offer.new", offer_id=7) == [{"event": "offer.new", "offer_id": 7}]


class TestWaiting:
    async def test_wait_for_returns_the_count_th_match(self, nursery: trio.Nursery) -> None:
        """wait_for(count=2) waits for the second matching event, ignoring others, and returns it."""
        watch = LogWatch()
        got: list[dict[str, object]] = []

        async def waiter() -> None:
            got.append(await watch.wait_for("x", count=2, k=1))

        nursery.start_soon(waiter)
        for line in (b'{"event":"x","k":1,"i":0}', b'{"event":"x","k":2}', b'{"event":"y","k":1}'):
            watch.feed(line + b"\n")
            await trio.testing.wait_all_tasks_blocked()
        assert got == []
        watch.feed(b'{"event":"x","k":1,"i":1}\n')
        await trio.testing.wait_all_tasks_blocked()
        assert got == [{"event": "x", "k": 1, "i": 1}]

    async def test_wait_until_wakes_on_each_event(self, nursery: trio.Nursery) -> None:
        """wait_until rechecks its predicate after every new event and returns once it holds."""
        watch = LogWatch()
        done = trio.Event()

        async def waiter() -> None:
            await watch.wait_until(lambda: len(watch.entries) == 3)
            done.set()

        nursery.start_soon(waiter)
        for _ in range(3):
            assert not done.is_set()
            watch.feed(b'{"event":"e"}\n')
            await trio.testing.wait_all_tasks_blocked()
        assert done.is_set()

    async def test_a_wait_fails_at_once_when_the_log_has_ended(self) -> None:
        """After close(), waiting for an event that never came fails with the end's description, not at the guard."""
        watch = LogWatch(describe_end=lambda: "stderr: boom")
        watch.feed(b'{"event":"a"}\n')
        watch.close()
        assert (await watch.wait_for("a"))["event"] == "a"  # what came before the end is still found
        with trio.move_on_after(1) as guard:  # far below the hang guard: the failure is immediate
            with pytest.raises(AssertionError, match=r"ended without b.*stderr: boom"):
                await watch.wait_for("b")
        assert not guard.cancelled_caught
