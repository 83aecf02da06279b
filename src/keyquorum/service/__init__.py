"""keyquorum.service."""
