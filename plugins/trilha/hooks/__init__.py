"""Trilha's hooks: one module per external system. Hooks own the connections and all the I/O."""
