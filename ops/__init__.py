"""What a person runs around the pipeline: the CLI and its commands (run, serve, predict, rollback, report,
Kubeflow submit/schedule, schema, study). Each command lives in its own module with a `register`."""
