"""The speed and memory targets (docs/performance.md, "Targets"): ``python -m benchmarks.targets`` (usage in ``cli``).

One module per target, each with ``run(args, threads, log) -> result rows``; ``cli.TARGETS``
maps the target names to them and ``common`` holds what several targets share.  Nothing is
imported here, so importing one target module does not load the others.
"""
