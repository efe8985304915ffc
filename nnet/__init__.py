"""cocktail's Python package: signal processing, I/O, models, losses, training, inference, metrics."""
