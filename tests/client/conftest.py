"""The client library's tests run against the scripted fake daemon (tests/fake_daemon.py) on a real socket."""

from tests import fake_daemon

serve = fake_daemon.serve  # the fixture
