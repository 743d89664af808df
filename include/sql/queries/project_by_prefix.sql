SELECT id, name, prefix, created_at FROM projects_registry WHERE prefix = %(prefix)s
