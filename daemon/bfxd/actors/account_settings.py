"""The account router's settings (apart, so the API module can name them without importing the router)."""

from __future__ import annotations

import attrs


@attrs.frozen
class AccountSettings:
    # From the config (settings.py derives them; the defaults live in config.py only).
    inputs_per_second: float  # the pace every input (foc, fon, calc) takes its turn under
    input_burst: int
