"""Keras-specific adapters: `keras2` gives Keras 2 era notebooks Keras 2 semantics inside the
sandbox child."""
