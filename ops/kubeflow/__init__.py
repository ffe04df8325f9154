"""`transferline compile, submit, schedule, bake, kubeflow-check`: Kubeflow Pipelines."""
