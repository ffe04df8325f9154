"""TF Serving's REST protocol: routes, request bodies, tensors and JSON answers."""
