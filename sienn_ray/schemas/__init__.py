"""Pydantic schemas, one module per resource, shared by the API, the CLI and the train loop."""
