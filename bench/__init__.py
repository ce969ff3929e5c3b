"""Benchmarks: each engine measure runs beside its baseline in the same process run."""
