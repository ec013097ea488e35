"""`make bench`: k6 load against a private local stack through Envoy, with a markdown + JSON report."""
