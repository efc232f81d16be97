"""Storage: SQLAlchemy models, engine setup, and the queries the crawler, CLI and digest need."""
