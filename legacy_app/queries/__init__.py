"""Read queries over the normalized tables, returning plain JSON-ready dicts."""
