"""The Watson v3 HTTP front: FastAPI app, forms, keys, URL fetching, connection limits, worker processes."""
