"""Data quality: row rules (transform), batch checks (warehouse) and schema policy."""
