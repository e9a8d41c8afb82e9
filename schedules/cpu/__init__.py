"""CPU schedule templates."""
