"""`make bench`: k6 load on a private local stack through Envoy; a markdown + JSON report."""
