"""Shape, data movement and indexing operators."""
