"""Actor settings derived from ``Config``: the one source of truth for every default an operator can set.

The settings classes hold no default for a value the config file can set; what they do default (buffer sizes,
internal timings) is not configurable and is documented where it is declared.
"""

from __future__ import annotations

from bfxd.actors.account import AccountSettings
from bfxd.actors.auth import AuthSettings
from bfxd.actors.connection import LinkSettings
from bfxd.actors.inbox import InboxSettings
from bfxd.config import Config
from bfxd.credentials import Credentials


def link_settings(config: Config) -> LinkSettings:
    return LinkSettings(
        url=config.exchange.url,
        connect_timeout=config.exchange.connect_timeout,
        heartbeat_timeout=config.exchange.heartbeat_timeout,
        initial_delay=config.reconnect.initial_delay,
        max_delay=config.reconnect.max_delay,
    )


def auth_settings(config: Config, credentials: Credentials) -> AuthSettings:
    return AuthSettings(
        api_key=credentials.api_key, api_secret=credentials.api_secret,
        auth_timeout=config.exchange.auth_timeout, retry_delay=config.reconnect.max_delay,
    )


def account_settings(config: Config) -> AccountSettings:
    return AccountSettings(inputs_per_second=config.exchange.inputs_per_second,
                           input_burst=config.exchange.input_burst)


def inbox_settings(config: Config) -> InboxSettings:
    return InboxSettings(
        allowed_uids=config.socket.allowed_uids,
        max_clients=config.socket.max_clients,
        request_timeout=config.requests.timeout,
        shutdown_grace=config.requests.shutdown_grace,
    )
