"""ContentService: problems, solutions and debates, and the internal decision RPC."""
