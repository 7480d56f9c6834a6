"""The core every layer uses: the data contract (schema), the typed configuration, atomic
I/O and partitioned execution. Imports nothing else of nonrecours."""
