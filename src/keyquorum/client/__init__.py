"""keyquorum.client."""
