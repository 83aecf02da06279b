"""keyquorum.seal."""
