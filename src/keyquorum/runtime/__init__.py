"""How the server process runs: today, the limits it puts on HTTP clients."""
