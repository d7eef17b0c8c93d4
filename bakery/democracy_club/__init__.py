"""Democracy Club's product, apart from the framework's core: what only its layers and
its users need (UK postcodes, `bakery lookup` and its boundary-change display, the
AddressBase, ballots and boundary-review sample generators). The framework reaches these
only by name (the sample generator registry, the CLI's command groups).

EveryElection's export handlers stay in bakery/lambdas/ (ee_*.py): a Lambda's code bundle
holds only that folder.
"""
