"""Tier 1: the sans-I/O protocol core, pure and table-driven, no Trio."""
