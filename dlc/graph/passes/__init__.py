"""Graph passes, one per module; each takes a Graph and returns a new Graph."""
