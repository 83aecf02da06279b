"""keyquorum.cli."""
