"""Interview sessions on the app origin: scheduling, the session and observe pages and API, who may
see a session (access), and the wiring of the session engine into the app."""
