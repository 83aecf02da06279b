"""keyquorum.crypto."""
