"""Tier 2: one actor at a time, memory channels and the virtual clock, no sockets."""
