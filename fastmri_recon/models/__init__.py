"""Reconstruction models (Keras model subclasses) and the registry that names them."""
