"""Benchmarks of the kit, measured side by side: `python -m bench` (see `bench/__main__.py`).

One module per benchmark (`startup`, `engine_overhead`, `train_throughput`, `serving_overhead`,
`local_loop`); `common` holds what they share and `report` renders `bench/results/README.md`.
"""
