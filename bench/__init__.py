"""Benchmarks of the suite: they measure and print figures next to a baseline; they assert nothing.

``python -m bench`` runs every benchmark at a size that fits a 2-core machine, ``--full`` at the
issues' full size. Each benchmark prints readable lines and ends with one JSON line.
"""
