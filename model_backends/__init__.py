"""Serve one language model behind the legal assistant's public API."""

__version__ = "0.1.0"
