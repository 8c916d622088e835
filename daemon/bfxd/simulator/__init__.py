"""The exchange simulator: a local Bitfinex-compatible WebSocket v2 server with fault injection (``bfxd simulate``).

It is the server side of the same sans-I/O core the daemon uses (``bfxd.protocol``), as h11 serves both ends of
HTTP. Start it inside trio with ``url = await nursery.start(Simulator(SimulatorConfig()).serve)``.
"""

from bfxd.simulator.account import Account, Change
from bfxd.simulator.config import Received, SimulatorConfig
from bfxd.simulator.faults import Faults, RateLimit
from bfxd.simulator.simulator import Simulator

__all__ = ["Account", "Change", "Faults", "RateLimit", "Received", "Simulator", "SimulatorConfig"]
