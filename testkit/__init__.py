"""What the demo, the benchmarks and the tests use to drive the programs: processes, traffic, a fast upstream, images."""
