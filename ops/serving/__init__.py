"""`transferline serve`: TF Serving's REST API over the serving dir, and the request log it writes."""
