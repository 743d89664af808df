UPDATE curated_inventory SET snowflake_loaded_at = now() WHERE id = %(id)s
