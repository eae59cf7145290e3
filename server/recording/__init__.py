"""The recording on the web: the recorder's wiring into the app, the taps that read the proxied
traffic, and the timeline, replay and export routes."""
