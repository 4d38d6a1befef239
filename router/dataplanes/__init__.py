"""Data planes: where the weights take effect (the built-in proxy, or nginx)."""
