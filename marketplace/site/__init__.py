"""Site-wide pages: home, health check, admin overview."""
