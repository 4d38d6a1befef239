"""Tiny real models: a Mistral-architecture model trained for seconds on a Russian legal text.

They let tests and the demo run the real engines through the exact loading code that the
production Saiga (GGUF) and Vistral (Hugging Face) weights go through.
"""
