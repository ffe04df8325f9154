"""`transferline init, run, retrain, predict, rollback, schema, encoder, config`: the pipeline's own commands."""
