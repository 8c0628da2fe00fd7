"""Backends turn a Graph into a callable: ``compile(graph) -> run(flat_args) -> flat_outs``."""
