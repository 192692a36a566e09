"""Segment evaluation in the warehouse: dialects and SQL helpers, the compiler (one query for every
segment), the engine that evaluates and writes a snapshot, ``explain`` and ``describe``."""
