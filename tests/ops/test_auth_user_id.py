"""Issue 15 item 8: a second auth OK does not silently change the user id."""

from __future__ import annotations

import trio
import trio.testing
from structlog.testing import capture_logs
from tests.actors.test_auth import Auth, auth, nothing_in  # noqa: F401 (the fixture)

from bfxd.actors.messages import FromLink, LinkDown
from bfxd.protocol import AuthOk


async def test_a_second_auth_ok_on_the_same_link_changes_nothing(
        auth: Auth, autojump_clock: trio.testing.MockClock) -> None:  # noqa: F811
    await auth.authenticated(1)
    assert auth.board.user_id == 1234567
    with capture_logs() as logs:
        await auth.send(FromLink(1, AuthOk(user_id=999, auth_id="x")))
    assert auth.board.user_id == 1234567
    assert nothing_in(auth.account)  # no second SessionReady
    assert [(e["event"], e["log_level"], e["user_id"], e["kept_user_id"]) for e in logs] == [
        ("exchange.auth_duplicate", "warning", 999, 1234567)]


async def test_another_user_on_a_new_link_is_logged_as_an_error(
        auth: Auth, autojump_clock: trio.testing.MockClock) -> None:  # noqa: F811
    await auth.authenticated(1)
    await auth.send(LinkDown(1, "closed by the exchange"))
    await auth.link_up(2)
    with capture_logs() as logs:
        await auth.send(FromLink(2, AuthOk(user_id=42, auth_id="y")))
    changed = [e for e in logs if e["event"] == "exchange.user_changed"]
    assert [(e["log_level"], e["previous_user_id"], e["user_id"]) for e in changed] == [("error", 1234567, 42)]
    assert auth.board.user_id == 42


async def test_the_same_user_on_a_new_link_is_quiet(auth: Auth, autojump_clock: trio.testing.MockClock  # noqa: F811
                                                    ) -> None:
    await auth.authenticated(1)
    await auth.send(LinkDown(1, "closed by the exchange"))
    with capture_logs() as logs:
        await auth.authenticated(2)
    assert [e["event"] for e in logs if e["log_level"] != "info"] == []
