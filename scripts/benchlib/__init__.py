"""Helpers of the benchmarks: a fast upstream to measure against and a light HTTP/1.1 load generator."""
