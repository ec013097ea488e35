"""Local fakes of external services that tests drive the real client libraries against."""
