"""The project's control plane: a real API server from upstream modules, KWOK nodes."""
