"""Model family module (being written; registers nothing yet)."""
