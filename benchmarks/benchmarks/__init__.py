"""asv benchmarks of crossentropy's hot paths."""
