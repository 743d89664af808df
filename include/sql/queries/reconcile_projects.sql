-- reconcile: the registered project names (to name the choices when an unknown one is asked for).
SELECT name FROM projects_registry ORDER BY name
