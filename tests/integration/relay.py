"""A TCP relay standing for the network between the daemon and the exchange, which a test can hold and cut.

The fault matrix uses it to put a frame "on the wire but not yet at the exchange" (``hold``), to kill a path
without closing its TCP connections (``blackhole``), and to lose a link with what it holds (``cut``).
"""

from __future__ import annotations

from functools import partial

import attrs
import trio


@attrs.define(eq=False)
class _Link:
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    to_exchange: trio.Event = attrs.Factory(trio.Event)  # set: bytes flow that way
    to_daemon: trio.Event = attrs.Factory(trio.Event)

    def __attrs_post_init__(self) -> None:
        self.to_exchange.set()
        self.to_daemon.set()


class Network:
    """A TCP relay between the daemon and the simulator. ``hold()`` stops the bytes of the live links towards the
    exchange (the daemon's writes still succeed: the frame is on the wire, not at the exchange); ``hold_answers()``
    the same towards the daemon (the exchange's answers are on the wire, not at the daemon); ``blackhole()``
    stops both ways (a dead path with the TCP connections still open); ``release()`` lets everything through;
    ``cut()`` ends the live links at once, losing what they hold. A link ends as a whole when either side closes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.url = ""
        self._links: set[_Link] = set()

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, self._relay, 0, host="127.0.0.1"))
            self.url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/ws/2"
            task_status.started(self.url)

    def hold(self) -> None:
        for link in self._links:
            if link.to_exchange.is_set():
                link.to_exchange = trio.Event()

    def hold_answers(self) -> None:
        for link in self._links:
            if link.to_daemon.is_set():
                link.to_daemon = trio.Event()

    def blackhole(self) -> None:
        self.hold()
        self.hold_answers()

    def release(self) -> None:
        for link in self._links:
            link.to_exchange.set()
            link.to_daemon.set()

    def cut(self) -> None:
        for link in list(self._links):
            link.scope.cancel()

    async def _relay(self, daemon_side: trio.SocketStream) -> None:
        async with daemon_side:
            try:
                exchange_side = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            except OSError:
                return
            link = _Link()
            self._links.add(link)
            try:
                async with exchange_side:
                    with link.scope:
                        async with trio.open_nursery() as pumps:
                            pumps.start_soon(self._pump, daemon_side, exchange_side, link, "to_exchange")
                            pumps.start_soon(self._pump, exchange_side, daemon_side, link, "to_daemon")
            finally:
                self._links.discard(link)

    @staticmethod
    async def _pump(source: trio.SocketStream, sink: trio.SocketStream, link: _Link, direction: str) -> None:
        try:
            while chunk := await source.receive_some(65536):
                await getattr(link, direction).wait()
                await sink.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        link.scope.cancel()  # one side ended: so does the link, both ways
