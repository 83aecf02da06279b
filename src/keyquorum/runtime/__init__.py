"""How the server process runs: its wiring (``wiring``: the core and the uvicorn options)
and the limits it puts on HTTP clients (``http_limits``, ``http_protocol``)."""
