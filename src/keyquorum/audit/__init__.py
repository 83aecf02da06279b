"""keyquorum.audit."""
