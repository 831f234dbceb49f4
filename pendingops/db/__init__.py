"""The database layer: schema, engine, batched lookups and writes, versions and locks."""
