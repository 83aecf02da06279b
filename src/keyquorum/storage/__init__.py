"""keyquorum.storage."""
