"""Benchmarks: ``python -m benchmarks [name ...]`` runs them and prints their figures."""
