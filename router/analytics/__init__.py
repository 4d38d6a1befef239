"""Usage analytics: one JSON line per public request, its question's category, and summaries of them."""
