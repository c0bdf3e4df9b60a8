"""/api/v1: JSON views over the same services the pages use, described by OpenAPI 3.1."""
