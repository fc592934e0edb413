"""The peers the benchmark suite measures tierstream against, on the same stream."""
