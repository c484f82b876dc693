"""fastapi-operator: FastAPI apps on Kubernetes, the way FastAPI's deployment guide says."""
