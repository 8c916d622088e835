"""The client library's tests: against the scripted fake daemon (tests/fake_daemon.py) on a real socket, and
against the real daemon and simulator in this trio run (the integration fixtures, reused here)."""

from tests import fake_daemon
from tests.integration import conftest as integration

serve = fake_daemon.serve  # the fixtures
sim_config, sim, log_watch = integration.sim_config, integration.sim, integration.log_watch
start_daemon, daemon = integration.start_daemon, integration.daemon
