"""The web page: live annotated stream, live figures and photo analysis (`run --web`)."""
