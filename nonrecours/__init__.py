"""nonrecours."""
