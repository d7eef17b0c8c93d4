"""Sample generators for Democracy Club's inputs, registered by name in
bakery/sample_data.py (GENERATORS) and chosen by a layer's `sample: {generator: NAME}`."""
