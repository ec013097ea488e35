"""Operations work that knows the services' data but belongs to none: database backups."""
