"""Operations tools run from a shell: local stack, bootstrap, settings, migrations, trace, UI, reconcile."""
