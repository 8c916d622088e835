"""``python -m bfxd.simulator``: the simulator alone, as ``bfxd simulate``."""

from bfxd.simulator.command import simulate_main

raise SystemExit(simulate_main())
