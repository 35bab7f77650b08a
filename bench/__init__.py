"""`make bench`: the project's performance figures, printed and written to bench/results.json."""
