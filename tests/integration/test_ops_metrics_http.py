"""GET /metrics: scraped with a real HTTP client (http.client) and parsed with prometheus_client's parser."""

from __future__ import annotations

import http.client
import socket
from functools import partial

import attrs
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.conftest import LogWatch
from tests.integration.helpers import GUARD_S, fast_link, test_config, test_credentials

from bfxd.config import MetricsConfig
from bfxd.config_values import ListenAddress
from bfxd.daemon import run_daemon
from bfxd.metrics_http import MAX_CONNECTIONS, serve_metrics
from bfxd.simulator import Simulator


def fetch(host: str, port: int, method: str = "GET", path: str = "/metrics") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=GUARD_S)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_a_running_daemon_serves_its_metrics(nursery: trio.Nursery, sim: Simulator, socket_dir,
                                                   log_watch: LogWatch) -> None:
    config = attrs.evolve(test_config(sim.url, socket_dir / "bfxd.sock"),
                          metrics=MetricsConfig(listen=ListenAddress("tcp", host="127.0.0.1", port=0)))
    stop, stopped = trio.Event(), trio.Event()

    async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
        try:
            await run_daemon(config, test_credentials(), stop=stop, link=fast_link(sim.url), task_status=task_status)
        finally:
            stopped.set()

    board = await nursery.start(run)
    with trio.fail_after(GUARD_S):
        await board.wait_ready()
    await log_watch.wait_until(lambda: board.offers == len(sim.offers))
    host, port = (await log_watch.wait_for("metrics.listening"))["addresses"][0]
    status, headers, body = await trio.to_thread.run_sync(fetch, host, port)
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(body.decode())
    assert got[("bfxd_session_state", (("state", "ready"),))] == 1
    assert got[("bfxd_offers", ())] == len(sim.offers)
    assert got[("bfxd_last_frame_age_seconds", ())] >= 0
    assert ("bfxd_reconnects_total", ()) in got
    stop.set()
    with trio.fail_after(GUARD_S):
        await stopped.wait()
    with pytest.raises(ConnectionRefusedError):  # the port is closed with the daemon
        await trio.to_thread.run_sync(fetch, host, port)


@pytest.fixture
async def server(nursery: trio.Nursery) -> tuple[str, int]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(partial(serve_metrics, listeners, lambda: "# TYPE up gauge\nup 1\n", request_timeout=0.5))
    host, port = listeners[0].socket.getsockname()[:2]
    return host, port


async def test_get_head_404_405(server: tuple[str, int]) -> None:
    host, port = server
    assert await trio.to_thread.run_sync(fetch, host, port) == (200, {
        "content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": "21"}, b"# TYPE up gauge\nup 1\n")
    status, headers, body = await trio.to_thread.run_sync(partial(fetch, host, port, "HEAD"))
    assert (status, headers["content-length"], body) == (200, "21", b"")
    assert (await trio.to_thread.run_sync(partial(fetch, host, port, "GET", "/")))[0] == 404
    status, headers, _ = await trio.to_thread.run_sync(partial(fetch, host, port, "POST"))
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    assert (await trio.to_thread.run_sync(partial(fetch, host, port, "GET", "/metrics?x=1")))[0] == 200


async def test_keep_alive_serves_several_requests_on_one_connection(server: tuple[str, int]) -> None:
    def two() -> list[int]:
        conn = http.client.HTTPConnection(*server, timeout=GUARD_S)
        try:
            statuses = []
            for _ in range(2):
                conn.request("GET", "/metrics")
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
            return statuses
        finally:
            conn.close()

    assert await trio.to_thread.run_sync(two) == [200, 200]


async def test_garbage_gets_400_and_a_silent_client_is_dropped(server: tuple[str, int]) -> None:
    stream = await trio.open_tcp_stream(*server)
    async with stream:
        await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
        with trio.fail_after(GUARD_S):
            reply = b""
            while chunk := await stream.receive_some(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 400 ")
    silent = await trio.open_tcp_stream(*server)
    async with silent:
        with trio.fail_after(GUARD_S):  # the server's 0.5 s request timeout closes it
            assert await silent.receive_some(4096) == b""


async def test_connections_beyond_the_limit_are_closed(server: tuple[str, int]) -> None:
    idle = [await trio.open_tcp_stream(*server) for _ in range(MAX_CONNECTIONS)]
    try:
        extra = socket.create_connection(server, timeout=GUARD_S)
        with extra:
            data = await trio.to_thread.run_sync(extra.recv, 1)
            assert data == b""  # closed at once, while the others still hold their slots
    finally:
        for stream in idle:
            await stream.aclose()


async def test_metrics_over_a_unix_socket(socket_dir) -> None:  # type: ignore[no-untyped-def]
    from bfxd.metrics_http import open_metrics_listeners

    path = socket_dir / "metrics.sock"
    listeners = await open_metrics_listeners(ListenAddress("unix", path=path))
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_metrics, listeners, lambda: "up 1\n"))
        await _scrape_unix(path)
        nursery.cancel_scope.cancel()
    assert not path.exists()  # removed with the server


async def _scrape_unix(path) -> None:  # type: ignore[no-untyped-def]
    assert path.stat().st_mode & 0o777 == 0o660
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await stream.send_all(b"GET /metrics HTTP/1.1\r\nHost: bfxd\r\nConnection: close\r\n\r\n")
        reply = b""
        with trio.fail_after(GUARD_S):
            while chunk := await stream.receive_some(4096):
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"\r\n\r\nup 1\n")
