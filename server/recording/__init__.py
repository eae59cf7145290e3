"""The recording on the web: the timeline, replay, live-stream and export routes, and the
recorder's app key (the recorder itself is ``workspaces/recording/recorder.py``, built in
``server/sessions/wiring.py`` before the session engine it hooks into)."""
