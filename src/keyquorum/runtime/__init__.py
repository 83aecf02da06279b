"""How the server process runs: ``server`` (one process: lock the data dir, build the
core, serve), ``cluster`` (``--workers``: the supervisor and its worker processes) and
``peers`` (the socket between them), its wiring (``wiring``: the core and the uvicorn
options) and the limits it puts on HTTP clients (``http_limits``, ``http_protocol``)."""
