"""`transferline report`: one HTML page about a run, read from MLMD and its artifacts."""
