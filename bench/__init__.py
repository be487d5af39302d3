"""Benchmarks and fault injection (bench/README.md). Shared helpers live in bench/common.py."""
