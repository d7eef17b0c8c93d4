"""`bakery review A B`: what a bake changed, as one self-contained HTML page (a map of the
changed addresses, the ballots they gained or lost, a table per outcode) or as JSON."""
