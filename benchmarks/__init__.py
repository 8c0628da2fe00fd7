"""Benchmarks B1-B6 (see the README's Benchmarks section): ``python -m benchmarks.run``."""
