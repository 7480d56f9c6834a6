"""The application layer, on top of every other: the command line, the scoring service's wiring
and the environment, read once here."""
