"""keyquorum.keys."""
