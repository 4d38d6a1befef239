"""Runtimes: how blue and green are started and stopped (`none`: given by URL; `local`: processes)."""
