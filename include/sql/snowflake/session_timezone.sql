{#- Loaded TIMESTAMP_TZ values take the session's offset: UTC makes them read the same whatever the
    user's default time zone is (the lake's timestamps are UTC). -#}
ALTER SESSION SET TIMEZONE = 'UTC'
