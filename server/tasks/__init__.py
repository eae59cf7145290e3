"""The task catalogue on the web: the admin's import, revision and publish pages and API (routes),
and the wiring of background imports (service)."""
