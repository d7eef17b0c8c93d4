"""Democracy Club's product, apart from the framework's core: what only its layers and
its users need (UK postcodes, `bakery lookup` and its boundary-change display, the
AddressBase, ballots and boundary-review sample generators). The framework names none of
them: they are entry points in pyproject.toml (`bakery.sample_generators`,
`bakery.commands`), as another organisation's package would declare its own.

EveryElection's export handlers stay in bakery/lambdas/ (ee_*.py): a Lambda's code bundle
holds only that folder.
"""

# `bakery compare`'s columns for its outcode files (entry point bakery.compare_defaults).
COMPARE_COLUMNS = {"key": "uprn", "values": "ballot_ids"}
