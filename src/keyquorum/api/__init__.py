"""keyquorum.api."""
