"""The PostgreSQL archive: full history, users and memberships (not critical for chat)."""
