"""The auth actor, driven with LinkUp / FromLink / LinkDown on the virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest
import structlog
import trio
import trio.testing

from bfxd.actors.auth import AuthSettings, run_auth
from bfxd.actors.messages import FromLink, LinkDown, LinkUp, OutboundFrame, Relink, SessionHeld, SessionReady
from bfxd.actors.session import SessionBoard
from bfxd.protocol import AuthRequest, decode_client_frame, decode_exchange_frame
from bfxd.protocol.encode import auth_signature, info_frame
from bfxd.secret import Secret
from conftest import load_frame_text

API_KEY = "k3y-0123456789abcdef"
API_SECRET = "s3cret-fedcba9876543210"
AUTH_TIMEOUT = 10.0
RETRY_DELAY = 60.0
T0_US = 1_700_000_000_000_000


def event(name: str) -> object:
    return decode_exchange_frame(load_frame_text(f"{name}.json"))


class Auth:
    """run_auth with every channel end the test needs and an injectable microsecond clock."""

    def __init__(self) -> None:
        self.settings = AuthSettings(api_key=Secret(API_KEY), api_secret=Secret(API_SECRET),
                                     auth_timeout=AUTH_TIMEOUT, retry_delay=RETRY_DELAY)
        self.board = SessionBoard()
        self.now_us = T0_US
        self.events, events_out = trio.open_memory_channel[LinkUp | LinkDown | FromLink](16)
        frames_in, self.frames = trio.open_memory_channel[OutboundFrame](16)
        account_in, self.account = trio.open_memory_channel[SessionReady | SessionHeld](16)
        relinks_in, self.relinks = trio.open_memory_channel[Relink](16)
        self.run = partial(run_auth, settings=self.settings, board=self.board, events=events_out, frames=frames_in,
                           to_account=account_in, relinks=relinks_in, clock_us=lambda: self.now_us)

    async def send(self, *messages: LinkUp | LinkDown | FromLink) -> None:
        """Hand messages to the actor and let it settle."""
        for message in messages:
            await self.events.send(message)
        await trio.testing.wait_all_tasks_blocked()

    async def link_up(self, generation: int) -> AuthRequest:
        """Open link *generation*; return its decoded auth frame."""
        await self.send(LinkUp(generation))
        frame = self.frames.receive_nowait()
        assert (frame.generation, frame.kind) == (generation, "auth")
        request = decode_client_frame(frame.text)
        assert isinstance(request, AuthRequest)
        return request

    async def authenticated(self, generation: int) -> None:
        await self.link_up(generation)
        await self.send(FromLink(generation, event("auth-ok")))
        assert self.account.receive_nowait() == SessionReady(generation)


def nothing_in(channel: trio.MemoryReceiveChannel[object]) -> bool:
    return channel.statistics().current_buffer_used == 0


@pytest.fixture
async def auth(nursery: trio.Nursery) -> AsyncIterator[Auth]:
    harness = Auth()
    await nursery.start(harness.run)
    yield harness


class TestAuthFrame:
    async def test_link_up_sends_a_valid_auth_frame(self, auth: Auth, autojump_clock: trio.testing.MockClock) -> None:
        """LinkUp sends one auth frame for that link, signed for the injected clock's nonce."""
        request = await auth.link_up(1)
        assert request.api_key == API_KEY
        assert request.nonce == str(T0_US)
        assert request.payload == f"AUTH{T0_US}"
        assert request.signature == auth_signature(Secret(API_SECRET), request.payload)
        assert request.filter == ("funding", "wallet", "notify")
        assert request.dms is None
        assert auth.board.state == "authenticating"
        assert nothing_in(auth.frames)

    async def test_log_fields_hold_no_secret(self, autojump_clock: trio.testing.MockClock) -> None:
        """The frame's log dict and the actor's log lines carry neither the key, the secret nor the signature."""
        harness = Auth()
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await nursery.start(harness.run)
                await harness.send(LinkUp(1))
                frame = harness.frames.receive_nowait()
                await harness.send(FromLink(1, event("auth-ok")), FromLink(1, event("auth-failed")))
                await harness.send(LinkUp(2))
                await harness.events.aclose()
        request = decode_client_frame(frame.text)
        assert isinstance(request, AuthRequest)
        assert set(frame.log) == {"key_fingerprint", "nonce"}
        assert frame.log == {"key_fingerprint": Secret(API_KEY).fingerprint(), "nonce": T0_US}
        assert logs, "the actor logged nothing at all: the check below would be vacuous"
        dumped = repr(frame.log) + repr(logs)
        for needle in (API_SECRET, API_KEY, request.signature):
            assert needle not in dumped

    async def test_nonces_strictly_increase_across_links(
        self, auth: Auth, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Each link gets a larger nonce, even when the clock stands still or steps back."""
        nonces = []
        for generation, now_us in enumerate([T0_US, T0_US - 5_000_000, T0_US, T0_US + 7], start=1):
            auth.now_us = now_us
            nonces.append(int((await auth.link_up(generation)).nonce))
            await auth.send(LinkDown(generation, "test"))
        assert nonces == [T0_US, T0_US + 1, T0_US + 2, T0_US + 7]


class TestAuthAnswer:
    async def test_ok_makes_the_session_ready(self, auth: Auth, autojump_clock: trio.testing.MockClock) -> None:
        """AuthOk records the user id and tells the router SessionReady(gen); "ready" is the router's to say."""
        await auth.link_up(3)
        await auth.send(FromLink(3, event("auth-ok")))
        assert auth.account.receive_nowait() == SessionReady(3)
        assert (auth.board.state, auth.board.user_id) == ("authenticating", 1234567)
        assert nothing_in(auth.relinks)

    async def test_refusal_waits_the_retry_delay(self, auth: Auth, autojump_clock: trio.testing.MockClock) -> None:
        """FAILED 10100 shows auth_failed with code and message and asks for a new link after retry_delay."""
        await auth.link_up(1)
        await auth.send(FromLink(1, event("auth-failed")))
        assert auth.relinks.receive_nowait() == Relink(1, "auth refused (10100: apikey: invalid)", RETRY_DELAY)
        snap = auth.board.snapshot()
        assert (snap.state, snap.detail) == ("auth_failed", "10100: apikey: invalid")
        assert nothing_in(auth.account)

    async def test_nonce_error_relinks_at_once_with_a_jump(
        self, auth: Auth, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A nonce refusal relinks with delay 0 and the next nonces jump 1 s, then 2 s, past the refused one."""
        first = int((await auth.link_up(1)).nonce)
        await auth.send(FromLink(1, event("auth-failed-nonce")))
        relink = auth.relinks.receive_nowait()
        assert (relink.generation, relink.delay) == (1, 0.0)
        assert auth.board.state != "auth_failed"
        await auth.send(LinkDown(1, "relink"))
        second = int((await auth.link_up(2)).nonce)
        assert second == first + 1_000_000 + 1
        await auth.send(FromLink(2, event("auth-failed-nonce")))
        assert auth.relinks.receive_nowait().delay == 0.0
        third = int((await auth.link_up(3)).nonce)
        assert third == second + 2_000_000 + 1

    async def test_no_answer_relinks_at_exactly_auth_timeout(
        self, auth: Auth, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Silence after the auth frame gives Relink(gen, delay=None) exactly auth_timeout later."""
        await trio.sleep(3)
        start = trio.current_time()
        await auth.link_up(1)
        with trio.fail_after(AUTH_TIMEOUT + 1):  # guard only: virtual time, a hang fails at once
            relink = await auth.relinks.receive()
        assert trio.current_time() - start == AUTH_TIMEOUT
        assert relink == Relink(1, f"no auth answer within {AUTH_TIMEOUT} s", None)
        assert nothing_in(auth.account)
        await trio.sleep(100)
        assert nothing_in(auth.relinks)  # reported once

    async def test_answer_in_time_cancels_the_timeout(
        self, auth: Auth, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An AuthOk one tick before the deadline means no relink ever follows."""
        await auth.link_up(1)
        await trio.sleep(AUTH_TIMEOUT - 0.001)
        await auth.send(FromLink(1, event("auth-ok")))
        await trio.sleep(1000)
        assert nothing_in(auth.relinks)
        assert auth.account.receive_nowait() == SessionReady(1)

    async def test_link_down_cancels_the_timeout(self, auth: Auth, autojump_clock: trio.testing.MockClock) -> None:
        """A link that goes away before its answer gets no timeout relink."""
        await auth.link_up(1)
        await trio.sleep(5)
        await auth.send(LinkDown(1, "closed"))
        await trio.sleep(1000)
        assert nothing_in(auth.relinks)


class TestMaintenance:
    async def test_20060_holds_inputs(self, auth: Auth, autojump_clock: trio.testing.MockClock) -> None:
        """Info 20060 on a ready link shows maintenance and tells the router SessionHeld."""
        await auth.authenticated(1)
        await auth.send(FromLink(1, event("info-20060")))
        assert auth.account.receive_nowait() == SessionHeld(1, "maintenance")
        assert (auth.board.state, auth.board.snapshot().detail) == ("maintenance", "exchange maintenance")
        assert nothing_in(auth.relinks)

    async def test_20061_relinks_at_once(self, auth: Auth, autojump_clock: trio.testing.MockClock) -> None:
        """Info 20061 holds inputs on the old link and asks for a new link with delay 0."""
        await auth.authenticated(1)
        await auth.send(FromLink(1, event("info-20060")), FromLink(1, event("info-20061")))
        assert auth.account.receive_nowait() == SessionHeld(1, "maintenance")
        assert auth.account.receive_nowait() == SessionHeld(1, "relinking")
        relink = auth.relinks.receive_nowait()
        assert (relink.generation, relink.delay) == (1, 0.0)

    async def test_greeting_with_status_zero_means_maintenance(
        self, auth: Auth, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A platform status 0 greeting shows maintenance, and the later AuthOk holds instead of readying."""
        await auth.link_up(1)
        greeting = decode_exchange_frame(info_frame(server_id="s1", platform_status=0))
        await auth.send(FromLink(1, greeting))
        assert auth.board.state == "maintenance"
        assert nothing_in(auth.account)
        await auth.send(FromLink(1, event("auth-ok")))
        assert auth.account.receive_nowait() == SessionHeld(1, "maintenance")
        assert auth.board.state == "maintenance"

    async def test_operative_greeting_changes_nothing(
        self, auth: Auth, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A platform status 1 greeting is only logged; AuthOk then readies the session."""
        await auth.link_up(1)
        await auth.send(FromLink(1, event("info-connect")))
        assert auth.board.state == "authenticating"
        await auth.send(FromLink(1, event("auth-ok")))
        assert auth.account.receive_nowait() == SessionReady(1)


class TestGenerations:
    async def test_events_of_an_older_link_are_ignored(
        self, auth: Auth, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Answers, maintenance notices and LinkDown about link 1 have no effect once link 2 is up."""
        await auth.link_up(1)
        start = trio.current_time()
        await auth.link_up(2)
        await auth.send(
            FromLink(1, event("auth-ok")),
            FromLink(1, event("auth-failed")),
            FromLink(1, event("info-20061")),
            LinkDown(1, "old link closed"),
        )
        assert nothing_in(auth.account)
        assert auth.board.state == "authenticating"
        with trio.fail_after(AUTH_TIMEOUT + 1):  # guard only
            relink = await auth.relinks.receive()  # only link 2's own timeout, on link 2's schedule
        assert relink.generation == 2
        assert trio.current_time() - start == AUTH_TIMEOUT

    async def test_events_after_link_down_are_ignored(
        self, auth: Auth, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An answer arriving after its link went down does not ready the session."""
        await auth.link_up(1)
        await auth.send(LinkDown(1, "closed"), FromLink(1, event("auth-ok")))
        assert nothing_in(auth.account)
        assert auth.board.state == "authenticating"

    async def test_closed_events_end_the_actor(self, autojump_clock: trio.testing.MockClock) -> None:
        """When its input ends, run_auth returns and closes every channel it was given."""
        harness = Auth()
        async with trio.open_nursery() as nursery:
            await nursery.start(harness.run)
            await harness.events.aclose()
        with pytest.raises(trio.EndOfChannel):
            harness.frames.receive_nowait()
        with pytest.raises(trio.EndOfChannel):
            harness.account.receive_nowait()
        with pytest.raises(trio.EndOfChannel):
            harness.relinks.receive_nowait()
