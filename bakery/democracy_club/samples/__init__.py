"""Sample generators for Democracy Club's inputs, registered as entry points of the group
`bakery.sample_generators` (pyproject.toml) and chosen by a layer's
`sample: {generator: NAME}`."""
