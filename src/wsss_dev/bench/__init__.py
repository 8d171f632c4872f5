"""Throughput measurements that `make bench` collects into results/bench/bench.csv (each returns rows)."""
