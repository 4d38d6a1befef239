"""Serve one language model behind the legal assistant's public API."""
