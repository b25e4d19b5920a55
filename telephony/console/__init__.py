"""The operator console: web pages over the admin API (see `app.py`)."""
