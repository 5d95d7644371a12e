"""The reference manager: the delegate's counterpart for local runs, tests and small
installs. One FastAPI server holds the HTTP API, the delegate websocket, the file store
and the log service, on one SQLite file."""
