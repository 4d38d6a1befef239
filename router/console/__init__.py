"""The operator console (`/console`) and the test page for people (`/try`): static pages over the public APIs."""
