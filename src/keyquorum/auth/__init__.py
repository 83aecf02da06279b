"""keyquorum.auth."""
