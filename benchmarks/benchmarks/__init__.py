"""asv benchmarks of crossentropy's hot paths: ``bench_categorical`` and ``bench_binary``."""
